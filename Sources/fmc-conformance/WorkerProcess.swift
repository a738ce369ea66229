// Crash isolation: the tests run in a worker process (this same executable with --worker-list), which makes one
// Device and runs its list in order, writing "@@start NAME" before and "@@result JSON" after each test on
// stdout. A Swift trap in the compiler or the runtime (an index out of range on a strange ONNX test) ends only
// the worker: the supervisor records that test as failed with the trap's message from the worker's stderr and
// starts a new worker on the rest. A test that exceeds the time limit is failed the same way (the worker is
// killed by its pid). Owned by fmc-conformance.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The worker side of the protocol.
enum WorkerProtocol {
    static let start = "@@start "
    static let result = "@@result "
    static let fatal = "@@fatal "

    static func send(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func encode(_ result: TestResult) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                       nan: "nan")
        let data = (try? encoder.encode(result)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ json: String) -> TestResult? {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                         nan: "nan")
        return try? decoder.decode(TestResult.self, from: Data(json.utf8))
    }
}

/// A worker that could not start (no Vulkan device, …): the whole run stops with its message.
struct WorkerFatalError: Error, CustomStringConvertible {
    var description: String
}

/// Lines of a pipe, read on a thread of their own so that the supervisor can wait for them with a timeout.
final class LineReader: @unchecked Sendable {
    private let lock = NSLock()
    private let available = DispatchSemaphore(value: 0)
    private var lines: [String?] = []  // nil = end of file

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending = Data(pending[(newline + 1)...])
                    push(line)
                }
            }
            if !pending.isEmpty { push(String(decoding: pending, as: UTF8.self)) }
            push(nil)
        }
        thread.start()
    }

    private func push(_ line: String?) {
        lock.lock()
        lines.append(line)
        lock.unlock()
        available.signal()
    }

    enum Event { case line(String), endOfFile, timedOut }

    func next(timeout seconds: Double) -> Event {
        guard available.wait(timeout: .now() + seconds) == .success else { return .timedOut }
        lock.lock()
        defer { lock.unlock() }
        let line = lines.removeFirst()
        return line.map { .line($0) } ?? .endOfFile
    }
}

struct Supervisor {
    /// This executable.
    var executable: String
    /// Arguments every worker gets (the suite directory and the run options), before --worker-list.
    var workerArguments: [String]
    /// Longest one test may take, in seconds.
    var timeout: Double
    var scratch: URL

    /// Runs `tests` (names) in workers; `finished` is called for each test, in order. `op` and `exchangeable`
    /// describe a test the worker could not report on (crash, time-out).
    func run(_ tests: [String], op: (String) -> String, exchangeable: (String) -> Bool,
             finished: (TestResult) -> Void) throws {
        var remaining = tests[...]
        var startupFailures = 0
        while !remaining.isEmpty {
            let listPath = scratch.appendingPathComponent("worker-list.txt").path
            let stderrPath = scratch.appendingPathComponent("worker-stderr.txt").path
            try remaining.joined(separator: "\n").write(toFile: listPath, atomically: true, encoding: .utf8)
            guard FileManager.default.createFile(atPath: stderrPath, contents: nil) else {
                throw WorkerFatalError(description: "cannot create \(stderrPath)")
            }

            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = workerArguments + ["--worker-list", listPath]
            let stdout = Pipe()
            process.standardOutput = stdout
            process.standardError = FileHandle(forWritingAtPath: stderrPath)
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let reader = LineReader(stdout.fileHandleForReading)

            var current: String?
            var progressed = false
            var ended = false
            while !ended {
                switch reader.next(timeout: current == nil ? 600 : timeout) {
                case .line(let line):
                    if line.hasPrefix(WorkerProtocol.start) {
                        current = String(line.dropFirst(WorkerProtocol.start.count))
                    } else if line.hasPrefix(WorkerProtocol.result) {
                        let json = String(line.dropFirst(WorkerProtocol.result.count))
                        guard let name = current, let result = WorkerProtocol.decode(json) else { continue }
                        finished(result)
                        if remaining.first == name { remaining.removeFirst() }
                        current = nil
                        progressed = true
                    } else if line.hasPrefix(WorkerProtocol.fatal) {
                        process.terminate()
                        process.waitUntilExit()
                        throw WorkerFatalError(description: String(line.dropFirst(WorkerProtocol.fatal.count)))
                    }
                case .endOfFile:
                    process.waitUntilExit()
                    ended = true
                case .timedOut:
                    kill(process.processIdentifier, SIGKILL)
                    process.waitUntilExit()
                    if let name = current {
                        var result = TestResult(name: name, op: op(name), status: .failed,
                                                reason: "timed out after \(Int(timeout)) s",
                                                exchangeableTypes: exchangeable(name), seconds: timeout)
                        result.detail = Self.tail(of: stderrPath)
                        finished(result)
                        if remaining.first == name { remaining.removeFirst() }
                        progressed = true
                    }
                    ended = true
                }
            }
            // A worker that was killed or trapped left its scratch directory behind (see Conformance.run).
            try? FileManager.default.removeItem(at: FileManager.default.temporaryDirectory
                .appendingPathComponent("fmc-conformance-\(process.processIdentifier)"))
            if let name = current, remaining.first == name {
                // The worker died inside this test.
                let how = process.terminationReason == .uncaughtSignal
                    ? "signal \(process.terminationStatus)" : "exit status \(process.terminationStatus)"
                let message = Self.crashMessage(stderrPath)
                var result = TestResult(name: name, op: op(name), status: .failed,
                                        reason: "crashed (\(how))" + (message.map { ": \($0)" } ?? ""),
                                        exchangeableTypes: exchangeable(name))
                result.detail = Self.tail(of: stderrPath)
                finished(result)
                remaining.removeFirst()
                progressed = true
            }
            if !progressed {
                startupFailures += 1
                if startupFailures >= 2 {
                    throw WorkerFatalError(description: "the worker process exits without running a test:\n"
                        + (Self.tail(of: stderrPath) ?? "(no output)"))
                }
            } else {
                startupFailures = 0
            }
        }
    }

    /// The Swift runtime's "Fatal error: …" line of a crashed worker, shortened.
    static func crashMessage(_ stderrPath: String) -> String? {
        guard let text = try? String(contentsOfFile: stderrPath, encoding: .utf8) else { return nil }
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let line = lines.last(where: { $0.contains("Fatal error") || $0.contains("fatal error") })
            ?? lines.last(where: { !$0.hasPrefix("WARNING") && !$0.isEmpty }) else { return nil }
        if let range = line.range(of: "Fatal error: ") {
            // "…/File.swift:123: Fatal error: Index out of range" → "Index out of range at File.swift:123".
            let location = line[..<range.lowerBound].split(separator: "/").last
                .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ": ")) }
            let prefix = location.map { " at \($0)" } ?? ""
            return String(line[range.upperBound...]).prefix(160) + prefix
        }
        return String(line.prefix(200))
    }

    /// The last lines of the worker's stderr, for the JSON detail.
    static func tail(of path: String, lines count: Int = 20) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty else { return nil }
        return text.split(whereSeparator: \.isNewline).suffix(count).joined(separator: "\n")
    }
}
