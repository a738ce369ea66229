/// What one run did, when, on which track: recorded with `SessionOptions.trace`, written as a Chrome /
/// Perfetto trace-event file by `chromeTraceJSON` (`fmrun --trace`). Times are CLOCK_MONOTONIC seconds
/// (`monotonicSeconds()`); GPU timestamps are converted to it as `clock` says.
public struct RunTrace: Sendable {
    /// One timeline row of the trace (a thread id in the trace file).
    public enum Track: Int, Sendable, CaseIterable {
        case computeQueue = 1, transferQueue, hostStreamer, hostMain

        public var name: String {
            switch self {
            case .computeQueue: "compute queue"
            case .transferQueue: "transfer queue"
            case .hostStreamer: "host streamer"
            case .hostMain: "host main"
            }
        }
    }

    public struct Event: Sendable {
        public var track: Track
        public var name: String
        public var start: Double
        public var duration: Double
        public var args: [String: String]

        public init(track: Track, name: String, start: Double, duration: Double, args: [String: String] = [:]) {
            self.track = track
            self.name = name
            self.start = start
            self.duration = duration
            self.args = args
        }
    }

    public var events: [Event] = []
    /// How GPU timestamps were put on the host clock (calibrated, or aligned to a submission).
    public var clock = ""

    public init() {}

    mutating func add(_ track: Track, _ name: String, from start: Double, to end: Double, _ args: [String: String] = [:]) {
        events.append(Event(track: track, name: name, start: start, duration: max(end - start, 0), args: args))
    }
}

extension RunTrace {
    /// A trace-event JSON file (the Chrome "JSON Object Format": `{"traceEvents": [...]}`) of `runs`, each its own
    /// process (pid 1, 2, … named by `name`), each track a thread named by "M" metadata events; complete events
    /// ("ph": "X") with `ts`/`dur` in microseconds from the earliest event of all runs.
    public static func chromeTraceJSON(runs: [(name: String, trace: RunTrace)]) -> String {
        let origin = runs.flatMap(\.trace.events).map(\.start).min() ?? 0
        var lines: [String] = []
        for (index, run) in runs.enumerated() {
            let pid = index + 1
            lines.append(#"{"name":"process_name","ph":"M","pid":\#(pid),"tid":0,"args":{"name":\#(json(run.name))}}"#)
            lines.append(#"{"name":"process_sort_index","ph":"M","pid":\#(pid),"tid":0,"args":{"sort_index":\#(pid)}}"#)
            for track in Track.allCases {
                lines.append(#"{"name":"thread_name","ph":"M","pid":\#(pid),"tid":\#(track.rawValue),"args":{"name":\#(json(track.name))}}"#)
                lines.append(#"{"name":"thread_sort_index","ph":"M","pid":\#(pid),"tid":\#(track.rawValue),"args":{"sort_index":\#(track.rawValue)}}"#)
            }
            lines.append(#"{"name":"gpu clock","ph":"M","pid":\#(pid),"tid":0,"args":{"clock":\#(json(run.trace.clock))}}"#)
            for event in run.trace.events {
                let args = event.args.keys.sorted().map { "\(json($0)):\(json(event.args[$0]!))" }.joined(separator: ",")
                lines.append(#"{"name":\#(json(event.name)),"ph":"X","ts":\#(micro(event.start - origin)),"dur":\#(micro(event.duration)),"pid":\#(pid),"tid":\#(event.track.rawValue),"args":{\#(args)}}"#)
            }
        }
        return "{\"traceEvents\":[\n" + lines.joined(separator: ",\n") + "\n],\"displayTimeUnit\":\"ms\"}\n"
    }

    /// Microseconds with three decimals (nanoseconds), never in exponent form.
    private static func micro(_ seconds: Double) -> String {
        let ns = Int64((seconds * 1e9).rounded())
        let sign = ns < 0 ? "-" : ""
        let a = ns.magnitude
        let frac = String(a % 1000)
        return "\(sign)\(a / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }

    /// A JSON string literal.
    private static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
