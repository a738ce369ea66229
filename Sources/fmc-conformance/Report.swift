// The printed report: a table per operator, the totals, issue 3's figure (of the node tests onnxruntime passes
// whose inputs and outputs are fp32/fp16/int64/int32/bool tensors, how many pass here), the failures and the
// unsupported reasons, and a last line CI test-output parsers read ("N passed, N failed, N skipped").
// Owned by fmc-conformance.

import Foundation

struct Report {
    var results: [TestResult]
    var baseline: ORTBaseline?
    var listUnsupported: Bool
    /// True when --ops/--filter/--only-ort-passing selected part of the suite (the figure says so).
    var selected: Bool
    /// --expected-failures: tests known to fail (each listed with its reason in the file). Their failures do not
    /// fail the run; the last line counts them as skipped.
    var expectedFailures: Set<String> = []
    var expectedFailuresPath: String?

    /// Failures not listed as expected: these decide the exit status.
    var unexpectedFailures: [TestResult] {
        results.filter { $0.status == .failed && !expectedFailures.contains($0.name) }
    }

    /// The operators issue 3 asks for, for the second figure.
    static let issueOps: Set<String> = [
        "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Tanh", "Sigmoid",
        "Relu", "LeakyRelu", "PRelu", "Elu", "Gelu", "HardSigmoid", "HardSwish", "Clip", "Min", "Max", "Where",
        "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Not", "Mod", "Cast", "MatMul",
        "Gemm", "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
        "LayerNormalization", "GroupNormalization", "InstanceNormalization", "Softmax", "ReduceMean", "ReduceSum",
        "ReduceMax", "ReduceL2", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split",
        "Slice", "Gather", "Expand", "Pad", "Resize", "Tile", "Shape", "Size", "Range", "ConstantOfShape",
        "Constant", "Identity", "Dropout", "Trilu", "CumSum", "ArgMax", "LSTM", "If",
    ]

    struct Counts {
        var passed = 0, failed = 0, unsupported = 0
        var total: Int { passed + failed + unsupported }

        mutating func add(_ status: TestStatus) {
            switch status {
            case .passed: passed += 1
            case .failed: failed += 1
            case .unsupported: unsupported += 1
            }
        }
    }

    var totals: Counts {
        var c = Counts()
        results.forEach { c.add($0.status) }
        return c
    }

    func render() -> String {
        var out: [String] = []
        out += table()
        out.append("")
        out += figures()
        let failures = unexpectedFailures
        if !failures.isEmpty {
            out.append("")
            out.append("Failures (\(failures.count)):")
            for r in failures { out.append("  \(r.name) [\(r.op)]: \(r.reason ?? "?")") }
        }
        let expected = results.filter { $0.status == .failed && expectedFailures.contains($0.name) }
        if !expected.isEmpty {
            out.append("")
            out.append("Expected failures (\(expected.count), listed in \(expectedFailuresPath ?? "?")):")
            for r in expected { out.append("  \(r.name) [\(r.op)]: \(r.reason ?? "?")") }
        }
        let fixed = results.filter { $0.status != .failed && expectedFailures.contains($0.name) }
        if !fixed.isEmpty {
            out.append("")
            out.append("Listed as expected failures but \(fixed.count) did not fail (remove them from "
                       + "\(expectedFailuresPath ?? "the list")):")
            for r in fixed { out.append("  \(r.name) [\(r.op)]: \(r.status.rawValue)") }
        }
        let unsupported = results.filter { $0.status == .unsupported }
        if !unsupported.isEmpty {
            out.append("")
            out.append("Unsupported (\(unsupported.count)), by reason:")
            var byReason: [String: [TestResult]] = [:]
            for r in unsupported { byReason[r.reason ?? "?", default: []].append(r) }
            for (reason, tests) in byReason.sorted(by: { ($0.value.count, $1.key) > ($1.value.count, $0.key) }) {
                var ops: [String] = []
                for t in tests where !ops.contains(t.op) { ops.append(t.op) }
                let shown = ops.prefix(8).joined(separator: ", ") + (ops.count > 8 ? ", … (\(ops.count) ops)" : "")
                out.append(String(format: "  %5d  ", tests.count) + "\(reason)  [\(shown)]")
            }
            if listUnsupported {
                out.append("")
                out.append("Unsupported tests:")
                for r in unsupported { out.append("  \(r.name) [\(r.op)]: \(r.reason ?? "?")") }
            }
        }
        out.append("")
        let t = totals
        let unexpected = failures.count
        if unexpected != t.failed {
            out.append("(skipped: \(t.unsupported) unsupported and \(t.failed - unexpected) expected failures)")
        }
        out.append("\(t.passed) passed, \(unexpected) failed, \(t.unsupported + t.failed - unexpected) skipped")
        return out.joined(separator: "\n")
    }

    func table() -> [String] {
        var byOp: [String: Counts] = [:]
        for r in results { byOp[r.op, default: Counts()].add(r.status) }
        let width = max(8, byOp.keys.map(\.count).max() ?? 0)
        func row(_ name: String, _ c: Counts) -> String {
            name.padding(toLength: width, withPad: " ", startingAt: 0)
                + String(format: " %7d %7d %12d %6d", c.passed, c.failed, c.unsupported, c.total)
        }
        var lines = ["op".padding(toLength: width, withPad: " ", startingAt: 0) + "  passed  failed  unsupported  total"]
        for op in byOp.keys.sorted(by: { $0.lowercased() < $1.lowercased() }) { lines.append(row(op, byOp[op]!)) }
        lines.append(String(repeating: "-", count: width + 36))
        lines.append(row("total", totals))
        return lines
    }

    func figures() -> [String] {
        guard let baseline else {
            return ["No ort_baseline.json next to the tests: the onnxruntime figure is not available."]
        }
        let scope = selected ? " (among the tests selected)" : ""
        func figure(_ pool: [TestResult], _ what: String) -> String {
            var c = Counts()
            pool.forEach { c.add($0.status) }
            let pct = pool.isEmpty ? 0 : 100 * Double(c.passed) / Double(pool.count)
            return "Of the \(pool.count) \(what), \(c.passed) pass here (\(String(format: "%.1f", pct))%); "
                + "\(c.failed) fail, \(c.unsupported) unsupported."
        }
        let eligible = results.filter { $0.ortPasses == true && $0.exchangeableTypes }
        let issue = eligible.filter { Report.issueOps.contains($0.op) }
        return [
            "Baseline: \(baseline.versions), CPU provider\(scope).",
            figure(eligible, "node tests onnxruntime passes that use only fp32/fp16/int64/int32/bool"),
            figure(issue, "such tests of the operators issue 3 lists"),
        ]
    }

    /// --json: every result, with the run's settings.
    static func writeJSON(_ results: [TestResult], settings: [String: String], to path: String) throws {
        struct File: Encodable {
            var settings: [String: String]
            var summary: [String: Int]
            var results: [TestResult]
        }
        var counts = Counts()
        results.forEach { counts.add($0.status) }
        let file = File(settings: settings, summary: ["passed": counts.passed, "failed": counts.failed,
                                                      "unsupported": counts.unsupported, "total": counts.total],
                        results: results)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                       nan: "nan")
        try encoder.encode(file).write(to: URL(fileURLWithPath: path))
    }
}
