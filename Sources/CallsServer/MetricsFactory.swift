import CoreMetrics
import Foundation
import Prometheus

/// swift-metrics' factory onto one swift-prometheus registry, with each family's help text (swift-prometheus keeps
/// one per family, and swift-metrics handles carry none) and its histogram buckets.
struct HelpfulPrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    /// Help text per metric name; every family made here must have one.
    let help: [String: String]
    /// Buckets of the recorders made with `aggregate: true`, per metric name.
    let buckets: [String: [Double]]

    private func text(_ label: String) -> String {
        guard let text = help[label] else { preconditionFailure("no help text for the metric \(label)") }
        return text
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: text(label))
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: text(label))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(name: label, labels: dimensions, help: text(label)) }
        return registry.makeValueHistogram(name: label, labels: dimensions, buckets: buckets[label] ?? [], help: text(label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(name: label, labels: dimensions, help: text(label))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            name: label, labels: dimensions, buckets: (buckets[label] ?? []).map { .nanoseconds(Int64($0 * 1e9)) }, help: text(label))
    }

    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
