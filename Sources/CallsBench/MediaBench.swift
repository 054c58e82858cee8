import CallsMedia

/// Media path benchmarks; grows with the media server.
enum MediaBench {
    static func run() -> [BenchResult] {
        _ = MediaLibraries.initializeSRTP()
        return []
    }
}
