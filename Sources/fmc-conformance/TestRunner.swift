// Runs one node test: check its types, pin its shape operands and weights, compile it with FlashMem's compiler (the bundle
// stays in memory), run it in a streaming Session on the shared Device, compare every output with the expected
// one. Every step is inside do/catch: a test that cannot be compiled or run becomes a result, never an abort.
// Owned by fmc-conformance.

import FlashMemCompiler
import FlashMemRuntime
import Foundation

final class TestRunner {
    let device: Device
    let precision: Precision
    let pinShapeOperands: Bool
    let pinWeights: Bool
    /// Where pinned copies of models are written (and removed after compiling).
    let scratch: URL

    init(device: Device, precision: Precision, pinShapeOperands: Bool, pinWeights: Bool, scratch: URL) {
        self.device = device
        self.precision = precision
        self.pinShapeOperands = pinShapeOperands
        self.pinWeights = pinWeights
        self.scratch = scratch
    }

    func run(_ test: NodeTest) -> TestResult {
        let start = DispatchTime.now().uptimeNanoseconds
        var result = TestResult(name: test.name, op: test.op, status: .failed,
                                exchangeableTypes: test.typeReason == nil)
        (result.rtol, result.atol) = tolerances(test)
        execute(test, into: &result)
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return result
    }

    /// The test's rtol/atol; fp16 storage of weights loosens them to rtol 1e-2, atol 1e-3 at least (what the
    /// project accepts for fp16 elsewhere), since the references are computed in the test's own precision.
    func tolerances(_ test: NodeTest) -> (Double, Double) {
        precision == .fp16 ? (max(test.rtol, 1e-2), max(test.atol, 1e-3)) : (test.rtol, test.atol)
    }

    private func fail(_ result: inout TestResult, _ reason: String, detail: String? = nil) {
        result.status = .failed
        result.reason = reason
        result.detail = detail
    }

    private func execute(_ test: NodeTest, into result: inout TestResult) {
        if let reason = test.staticReason {
            result.status = .unsupported
            result.reason = reason
            return
        }
        let sets: [DataSet]
        do {
            sets = try test.dataSets()
        } catch {
            return fail(&result, "test data: \(error)")
        }
        guard !sets.isEmpty else { return fail(&result, "test data: no test_data_set_* directory") }
        if let reason = NodeTest.dataReason(sets) {
            result.status = .unsupported
            result.reason = reason
            result.exchangeableTypes = false
            return
        }
        for (k, set) in sets.enumerated() {
            guard set.inputs.count <= test.model.inputs.count, set.outputs.count == test.model.outputs.count else {
                return fail(&result, "test data: data set \(k) has \(set.inputs.count) inputs and \(set.outputs.count) "
                    + "outputs; the model declares \(test.model.inputs.count) and \(test.model.outputs.count)")
            }
            guard runDataSet(set, of: test, into: &result) else { return }
        }
        result.status = .passed
        result.reason = nil
    }

    /// Compiles and runs one data set; false (with `result` filled in) when the test ends here.
    private func runDataSet(_ set: DataSet, of test: NodeTest, into result: inout TestResult) -> Bool {
        let inputNames = test.model.inputs.prefix(set.inputs.count).map(\.name)
        let pinned = PinnedInputs.inputsToPin(test.model, shapeOperands: pinShapeOperands, weights: pinWeights)
            .filter(inputNames.contains)
        if !pinned.isEmpty { result.pinnedInputs = pinned }
        let zeroSize = (set.inputs + set.outputs).contains(where: \.hasZeroSizeDimension)

        // Compile.
        var options = CompileOptions()
        options.precision = precision
        options.modelName = test.name
        // The portable kernels on every device (lavapipe has no cooperative matrices); Benchmarks/coopmat-bench.sh
        // checks the tensor-core ones.
        options.tensorCores = .off
        for (name, file) in zip(inputNames, set.inputs) where !pinned.contains(name) {
            options.inputShapes[name] = file.shape
        }
        var modelPath = test.modelPath
        if !pinned.isEmpty {
            modelPath = scratch.appendingPathComponent("\(test.name).pinned.onnx").path
            var values: [String: String] = [:]
            for (name, file) in zip(inputNames, set.inputs) where pinned.contains(name) { values[name] = file.path }
            do {
                try PinnedInputs.writePinnedModel(modelPath: test.modelPath, values: values, to: modelPath)
            } catch {
                fail(&result, "pinning inputs: \(error)")
                return false
            }
        }
        let compiled: CompiledModel
        do {
            defer { if modelPath != test.modelPath { try? FileManager.default.removeItem(atPath: modelPath) } }
            compiled = try Compiler.compile(path: modelPath, options: options)
        } catch {
            switch Classification.compileError(error, testOp: test.op, zeroSizeData: zeroSize) {
            case .unsupported(let reason):
                result.status = .unsupported
                result.reason = reason
            case .failed(let reason):
                result.status = .failed
                result.reason = reason
            }
            result.detail = "\(error)"
            return false
        }

        // Run.
        let session: Session
        do {
            let loaded = LoadedBundle(bundle: compiled.bundle, payload: compiled.payload, path: test.name)
            session = try Session(bundle: loaded, device: device, options: SessionOptions(loadMode: .streaming,
                                                                                          waitTimeoutSeconds: 120))
        } catch {
            fail(&result, "session: " + Classification.oneLine("\(error)"))
            return false
        }
        var inputs: [HostTensor] = []
        for binding in session.inputs {
            guard let j = inputNames.firstIndex(of: binding.name), var tensor = set.inputs[j].tensor else {
                fail(&result, "the bundle has an input '\(binding.name)' the test does not feed")
                return false
            }
            guard tensor.elementType == binding.elementType, tensor.shape == binding.shape.map({ Int($0) }) else {
                fail(&result, "input '\(binding.name)': test data is \(tensor.elementType) \(tensor.shape), the bundle "
                    + "expects \(binding.elementType) \(binding.shape)")
                return false
            }
            tensor.name = binding.name
            inputs.append(tensor)
        }
        let outputs: [HostTensor]
        do {
            outputs = try session.run(inputs: inputs)
        } catch {
            fail(&result, "run: " + Classification.oneLine("\(error)"))
            return false
        }

        // Compare.
        for declared in test.model.outputs where !session.outputs.contains(where: { $0.name == declared.name }) {
            fail(&result, "output '\(declared.name)' is missing from the bundle")
            return false
        }
        var firstFailure: String?
        for (k, binding) in session.outputs.enumerated() {
            guard let j = test.model.outputs.firstIndex(where: { $0.name == binding.name }),
                  let expected = set.outputs[j].tensor, k < outputs.count else {
                fail(&result, "the bundle has an output '\(binding.name)' the model does not declare")
                return false
            }
            let label = "output \(j) '\(binding.name)'"
            switch Tolerance.check(actual: outputs[k], expected: expected, rtol: result.rtol!, atol: result.atol!) {
            case .shapeMismatch(let actual, let wanted):
                firstFailure = firstFailure ?? "\(label): shape \(actual), expected \(wanted)"
            case .dtypeMismatch(let actual, let wanted):
                firstFailure = firstFailure ?? "\(label): dtype \(actual), expected \(wanted)"
            case .compared(let c):
                result.maxAbsError = max(result.maxAbsError ?? 0, c.maxAbsError)
                result.maxRelError = max(result.maxRelError ?? 0, c.maxRelError)
                result.mismatched = (result.mismatched ?? 0) + c.mismatched
                result.elements = (result.elements ?? 0) + c.elements
                if !c.passed { firstFailure = firstFailure ?? "\(label): " + Self.describe(c) }
            }
        }
        if let firstFailure {
            fail(&result, firstFailure)
            return false
        }
        return true
    }

    static func describe(_ c: Comparison) -> String {
        var s = "\(c.mismatched) of \(c.elements) elements off (max abs \(sci(c.maxAbsError)), max rel \(sci(c.maxRelError))"
        if c.nonFiniteMismatches > 0 { s += ", \(c.nonFiniteMismatches) NaN/inf" }
        if let m = c.firstMismatch { s += "; first [\(m.index)]: \(num(m.actual)) vs \(num(m.expected))" }
        return s + ")"
    }

    static func sci(_ x: Double) -> String { String(format: "%.1e", x) }
    static func num(_ x: Double) -> String { String(format: "%.6g", x) }
}
