import Glibc

/// Real-time scheduling (`SCHED_RR`) for the media threads (`MediaServerConfiguration.realtimePriority`).
///
/// Why: a fan-out to hundreds of listeners takes milliseconds of CPU; under the default scheduler a thread that wakes
/// for the next packet, or a fan-out helper, may wait a whole time slice (several milliseconds on a busy machine)
/// behind any other process, and every copy of that packet waits with it. A `SCHED_RR` thread runs as soon as it is
/// runnable. The media threads block in `epoll` or on a semaphore whenever there is no packet, and the kernel's
/// real-time throttling (`kernel.sched_rt_runtime_us`, 95 % by default) still leaves the rest of the machine time.
enum RealtimeScheduling {
    /// `SCHED_RR` from `<sched.h>` (Swift's Glibc module imports the function but not the constant).
    static let roundRobin: CInt = 2

    /// Puts the calling thread under `SCHED_RR` at `priority` (1...99). Returns nil on success, else what failed and
    /// how to allow it.
    static func applyToCurrentThread(priority: Int) -> String? {
        var parameters = sched_param(sched_priority: CInt(priority))
        // Linux: pid 0 is the calling thread, not the whole process.
        guard sched_setscheduler(0, roundRobin, &parameters) != 0 else { return nil }
        let error = errno
        let reason = String(cString: strerror(error))
        return "cannot run the media threads at real-time priority \(priority) (SCHED_RR): \(reason). "
            + "Run serve as root, give it CAP_SYS_NICE (AmbientCapabilities=CAP_SYS_NICE) or a real-time limit of at least "
            + "\(priority) (LimitRTPRIO=\(priority) in its systemd unit, ulimit -r), or set rtc.realtime_priority = 0; "
            + "forwarding goes on with normal scheduling"
    }

    /// The calling thread's policy and priority (for tests and logs).
    static func currentThread() -> (policy: CInt, priority: CInt) {
        var parameters = sched_param()
        let policy = sched_getscheduler(0)
        _ = sched_getparam(0, &parameters)
        return (policy, parameters.sched_priority)
    }
}
