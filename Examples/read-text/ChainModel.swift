// One model of the OCR chain: a session in the shared device context, its image input checked against what the
// app feeds it, and the time its runs took.

import ExampleSupport
import FlashMemRuntime

final class ChainModel {
    /// "det", "cls" or "rec": how the output names the model.
    let role: String
    let path: String
    let session: Session
    /// The input's name and its compiled [1, 3, height, width].
    let inputName: String
    let height: Int, width: Int
    /// The sum of the runs' wall times (each includes taking the memory back from the context when it had to).
    private(set) var seconds = 0.0
    private(set) var runs = 0
    /// Runs that had to acquire the session's device memory (its first, and any after another model took it).
    private(set) var acquisitions = 0

    /// Opens `path` as a session of `context` and checks that it has one float32 image input [1, 3, H, W]
    /// (`expected` names a fixed H × W where the app needs one) and one output.
    init(role: String, path: String, context: DeviceContext, options: SessionOptions,
         expected: (height: Int, width: Int)? = nil, compileHint: String) throws {
        self.role = role
        self.path = path
        session = try Session(bundle: try openBundle(path: path), context: context, options: options)
        guard session.inputs.count == 1, session.outputs.count == 1 else {
            throw RecognitionError("\(path) (\(role)) has \(session.inputs.count) inputs and \(session.outputs.count) "
                                   + "outputs; the \(role) model has one of each")
        }
        let input = session.inputs[0]
        let shape = input.shape.map(Int.init)
        guard input.elementType == .float32, shape.count == 4, shape[0] == 1, shape[1] == 3, shape[2] > 0, shape[3] > 0 else {
            throw RecognitionError("\(path) (\(role)) takes \(input.name) as \(input.elementType) \(input.shape); expected "
                                   + "float32 [1, 3, H, W]: \(compileHint)")
        }
        if let expected, (shape[2], shape[3]) != expected {
            throw RecognitionError("\(path) (\(role)) takes \(input.name) of shape \(input.shape); expected "
                                   + "[1, 3, \(expected.height), \(expected.width)]: \(compileHint)")
        }
        inputName = input.name
        (height, width) = (shape[2], shape[3])
    }

    var outputShape: [Int] { session.outputs[0].shape.map(Int.init) }
    var modelName: String { session.bundle.bundle.meta.modelName }

    /// Runs the model on one image ([3, height, width] CHW float32) and returns its output.
    func run(_ image: [Float]) throws -> HostTensor {
        let output = try session.run(inputs: [HostTensor(name: inputName, shape: [1, 3, height, width], floats: image)])[0]
        if let stats = session.lastStats {
            seconds += stats.wallSeconds
            acquisitions += stats.acquiredMemory ? 1 : 0
        }
        runs += 1
        return output
    }
}
