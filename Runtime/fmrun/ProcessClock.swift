#if canImport(Glibc)
import Glibc
#endif

/// Seconds since this process started, for the cold-latency figure. On Linux the start comes from
/// /proc/self/stat (field 22, clock ticks since boot; 10 ms resolution) against CLOCK_BOOTTIME; elsewhere,
/// or if /proc is unreadable, from the first call (≈ entering main).
enum ProcessClock {
    private static let mainEntry = monotonicNow()
    private static let startOffset: Double? = secondsSinceStartFromProc()

    /// Call first thing in main so the fallback is close to process start.
    static func touch() { _ = mainEntry; _ = startOffset }

    /// Seconds since the process started (or since `touch`).
    static func sinceStart() -> Double {
        let sinceMain = monotonicNow() - mainEntry
        return (startOffset ?? 0) + sinceMain
    }

    /// Whether `sinceStart` counts from the real process start.
    static var fromProcessStart: Bool { startOffset != nil }

    private static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    private static func secondsSinceStartFromProc() -> Double? {
        #if os(Linux)
        guard let file = fopen("/proc/self/stat", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let line = String(cString: buffer)
        // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
        guard let close = line.lastIndex(of: ")") else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); starttime is field 22.
        guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        var boot = timespec()
        clock_gettime(CLOCK_BOOTTIME, &boot)
        let now = Double(boot.tv_sec) + Double(boot.tv_nsec) * 1e-9
        let offset = now - ticks / hz
        return offset >= 0 && offset < 3600 ? offset : nil
        #else
        return nil
        #endif
    }
}
