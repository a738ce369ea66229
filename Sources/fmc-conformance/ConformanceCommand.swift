// fmc-conformance: compiles and runs the ONNX backend node tests (written by
// ../shared/corpus/materialize_onnx_node_tests.py) on a Vulkan device and prints the pass table issue 3 asks for.
// A thin shell: selection and options here; loading in NodeTest, running in TestRunner, crash isolation in
// WorkerProcess, printing in Report. Results go to stdout, progress to stderr. Owned by fmc-conformance.

import ArgumentParser
import FlashMemCompiler
import FlashMemRuntime
import Foundation

struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fmc-conformance",
        abstract: "Run the ONNX backend node tests through fmc and the FlashMem runtime; print a pass table per operator.",
        discussion: """
            DIR holds node/test_*/ (model.onnx + test_data_set_0/input_*.pb, output_*.pb) and ort_baseline.json, as \
            materialize_onnx_node_tests.py --out DIR writes them. Each test is compiled in memory and run in a \
            streaming session; outputs must match at onnx's tolerances (rtol 1e-3, atol 1e-7 unless the test sets \
            others; integers exactly). Exit status 1 when a test fails (unsupported ones do not), 2 when the run \
            cannot start (no tests, no Vulkan device), 64 on a usage error.
            """)

    @Argument(help: "The materialized node tests (the directory given to materialize_onnx_node_tests.py --out).")
    var dir: String

    @Option(help: ArgumentHelp("Only the tests of these operators (comma-separated, repeatable; case-insensitive).",
                               valueName: "OP,OP,…"))
    var ops: [String] = []

    @Option(help: "Only the tests whose name contains this string.")
    var filter: String?

    @Option(help: "Weight storage precision: fp32 or fp16 (fp16 loosens the tolerance to rtol 1e-2, atol 1e-3).")
    var precision: String = "fp32"

    @Option(help: "Write every test's result (status, reason, error figures) to this JSON file.")
    var json: String?

    @Flag(help: "List every unsupported test with its reason (by default they are grouped by reason).")
    var listUnsupported = false

    @Option(help: "Vulkan device index (see fmrun --list-devices).")
    var device: Int?

    @Flag(help: "Only the tests onnxruntime passes (ort_baseline.json's pass list).")
    var onlyOrtPassing = false

    @Flag(help: "Exit with status 0 even when tests fail (for the documented full run).")
    var allowFailures = false

    @Option(help: ArgumentHelp("Tests known to fail, one per line as `test_name  # reason`: their failures are reported but do not fail the run.",
                               valueName: "FILE"))
    var expectedFailures: String?

    @Flag(help: "Keep shape operands (Reshape's shape, Slice's starts, …) as run-time inputs instead of pinning them to the test's values.")
    var noPinShapeOperands = false

    @Flag(help: "Keep learned parameters (Conv's W and B, BatchNormalization's scale/B/mean/var, …) as run-time inputs instead of pinning them.")
    var noPinWeights = false

    @Flag(help: "Run the tests in this process (no crash isolation; for debugging).")
    var inProcess = false

    @Option(help: "Longest one test may take, in seconds (isolated runs only).")
    var timeout: Double = 300

    @Flag(help: "No per-test progress lines on stderr.")
    var quiet = false

    @Option(help: .hidden)
    var workerList: String?

    /// Testing the crash isolation: the worker traps when it reaches this test.
    @Option(help: .hidden)
    var crashOn: String?

    func validate() throws {
        guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be fp32 or fp16") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        do {
            try runSuite()
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            // Exit status 1 means "a test failed"; a run that cannot start is 2.
            progress("fmc-conformance: error: \(error)")
            throw ExitCode(2)
        }
    }

    private func runSuite() throws {
        let suite = try Suite(path: dir)
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("fmc-conformance-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        if let workerList {
            return try runWorker(suite: suite, listPath: workerList, scratch: scratch)
        }

        // Selection.
        let baseline = try ORTBaseline.read(root: suite.root)
        if onlyOrtPassing && baseline == nil {
            throw ValidationError("--only-ort-passing needs \(suite.root.path)/ort_baseline.json (materialize without --no-ort)")
        }
        let wantedOps = Set(ops.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty })
        var tests: [NodeTest] = []
        var early: [String: TestResult] = [:]
        for name in suite.testNames {
            if let filter, !name.contains(filter) { continue }
            if onlyOrtPassing && !(baseline?.passing.contains(name) ?? false) { continue }
            do {
                let test = try suite.load(name)
                if !wantedOps.isEmpty {
                    let keys = Set(test.op.split(separator: "+").flatMap { op -> [String] in
                        let s = op.lowercased()
                        return [s, s.components(separatedBy: "::").last ?? s]
                    })
                    if keys.isDisjoint(with: wantedOps) { continue }
                }
                tests.append(test)
            } catch {
                // A test whose model cannot be read is selected by name only (its operator is unknown).
                if !wantedOps.isEmpty { continue }
                early[name] = TestResult(name: name, op: "(unreadable)", status: .failed, reason: "\(error)",
                                         exchangeableTypes: false)
            }
        }
        let names = (tests.map(\.name) + early.keys).sorted()
        guard !names.isEmpty else { throw ValidationError("no test matches the selection") }
        let byName = Dictionary(uniqueKeysWithValues: tests.map { ($0.name, $0) })

        // Tests whose declared types or operator domains already rule them out are decided here; the rest run.
        for test in tests {
            if let reason = test.staticReason {
                early[test.name] = TestResult(name: test.name, op: test.op, status: .unsupported, reason: reason,
                                              exchangeableTypes: test.typeReason == nil)
            }
        }
        let toRun = names.filter { early[$0] == nil }
        let deviceText = try describeDevice()
        progress("fmc-conformance: \(names.count) tests (\(toRun.count) to compile and run) from \(suite.nodeDirectory.path); "
                 + "precision \(precision); \(deviceText)")

        var results: [String: TestResult] = early
        var done = early.count
        let started = monotonic()
        func record(_ r: TestResult) {
            var r = r
            r.ortPasses = baseline.map { $0.passing.contains(r.name) }
            results[r.name] = r
            done += 1
            if !quiet {
                let status = r.status.rawValue + (r.reason.map { ": \($0)" } ?? "")
                progress(String(format: "[%4d/%d] ", done, names.count) + "\(r.name)  \(status)  "
                         + String(format: "(%.2f s)", r.seconds))
            }
        }
        for name in early.keys { results[name]?.ortPasses = baseline.map { $0.passing.contains(name) } }

        if inProcess {
            let runner = try makeRunner(scratch: scratch)
            for name in toRun { record(runner.run(byName[name]!)) }
        } else {
            let supervisor = Supervisor(executable: selfPath(), workerArguments: workerArguments(), timeout: timeout,
                                        scratch: scratch)
            do {
                try supervisor.run(toRun, op: { byName[$0]?.op ?? "?" },
                                   exchangeable: { byName[$0]?.typeReason == nil }, finished: record)
            } catch let error as WorkerFatalError {
                progress("fmc-conformance: \(error)")
                throw ExitCode(2)
            }
        }
        progress(String(format: "fmc-conformance: %.1f s", monotonic() - started))

        var ordered = names.compactMap { results[$0] }
        var report = Report(results: ordered, baseline: baseline, listUnsupported: listUnsupported,
                            selected: !wantedOps.isEmpty || filter != nil || onlyOrtPassing)
        if let expectedFailures {
            report.expectedFailures = try Self.readExpectedFailures(expectedFailures)
            report.expectedFailuresPath = expectedFailures
            for i in ordered.indices where report.expectedFailures.contains(ordered[i].name) {
                ordered[i].expectedFailure = true
            }
        }
        if let json {
            try Report.writeJSON(ordered, settings: settings(deviceText), to: json)
        }
        print(report.render())
        if !report.unexpectedFailures.isEmpty && !allowFailures { throw ExitCode(1) }
    }

    /// The test names of an expected-failures file: the first word of each line; `#` starts a comment.
    static func readExpectedFailures(_ path: String) throws -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read --expected-failures \(path)")
        }
        return Set(text.split(whereSeparator: \.isNewline).compactMap { line in
            line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                .split(whereSeparator: \.isWhitespace).first.map(String.init)
        })
    }

    // MARK: - Worker

    private func runWorker(suite: Suite, listPath: String, scratch: URL) throws {
        let names = try String(contentsOfFile: listPath, encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init)
        let runner: TestRunner
        do {
            runner = try makeRunner(scratch: scratch)
        } catch {
            WorkerProtocol.send(WorkerProtocol.fatal + Classification.oneLine("\(error)"))
            throw ExitCode(3)
        }
        for name in names {
            WorkerProtocol.send(WorkerProtocol.start + name)
            if name == crashOn { fatalError("--crash-on \(name)") }
            let result: TestResult
            do {
                result = runner.run(try suite.load(name))
            } catch {
                result = TestResult(name: name, op: "(unreadable)", status: .failed, reason: "\(error)",
                                    exchangeableTypes: false)
            }
            WorkerProtocol.send(WorkerProtocol.result + WorkerProtocol.encode(result))
        }
    }

    private func makeRunner(scratch: URL) throws -> TestRunner {
        let device = try Device(options: DeviceOptions(deviceIndex: device, applicationName: "fmc-conformance"))
        return TestRunner(device: device, precision: Precision(rawValue: precision)!,
                          pinShapeOperands: !noPinShapeOperands, pinWeights: !noPinWeights, scratch: scratch)
    }

    /// The arguments a worker needs to run tests exactly as this process would.
    private func workerArguments() -> [String] {
        var args = [dir, "--precision", precision]
        if let device { args += ["--device", String(device)] }
        if noPinShapeOperands { args.append("--no-pin-shape-operands") }
        if noPinWeights { args.append("--no-pin-weights") }
        if let crashOn { args += ["--crash-on", crashOn] }
        return args
    }

    private func describeDevice() throws -> String {
        let devices = try Device.list()
        if let device {
            guard device >= 0 && device < devices.count else {
                throw ValidationError("--device \(device) is out of range (\(devices.count) devices)")
            }
            return "device [\(device)] \(devices[device].name)"
        }
        let usable = devices.filter(\.usable)
        return usable.isEmpty ? "no usable Vulkan device" : "default device (\(usable.map(\.name).joined(separator: ", ")))"
    }

    private func settings(_ deviceText: String) -> [String: String] {
        var s = ["dir": dir, "precision": precision, "device": deviceText, "fmc": Compiler.version,
                 "pinShapeOperands": String(!noPinShapeOperands),
                 "pinWeights": String(!noPinWeights), "onlyOrtPassing": String(onlyOrtPassing)]
        if !ops.isEmpty { s["ops"] = ops.joined(separator: ",") }
        if let filter { s["filter"] = filter }
        return s
    }

    private func selfPath() -> String {
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        return link ?? CommandLine.arguments[0]
    }
}

func progress(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

func monotonic() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
