import Foundation

/// CPU time and resident memory of a local process, from `/proc`.
public enum ProcessSample {
    public static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based), so indexes 11 and 12 here.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    public static func residentBytes(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// This process's figures for `/metrics` (the standard `process_*` metrics).
struct ProcessFigures {
    var cpuSeconds: Double?
    var residentBytes: Int?
    var virtualBytes: Int?
    var openFileDescriptors: Int?
    var maxFileDescriptors: Int?
}

extension ProcessSample {
    static var current: ProcessFigures {
        let pid = getpid()
        var figures = ProcessFigures(cpuSeconds: cpuSeconds(pid), residentBytes: residentBytes(pid))
        if let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8), let pages = Int(text.split(separator: " ").first ?? "") {
            figures.virtualBytes = pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        figures.openFileDescriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 { figures.maxFileDescriptors = Int(limit.rlim_cur) }
        return figures
    }
}
