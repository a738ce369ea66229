// Pinned inputs. The node tests feed as graph inputs what real models hold as constants: shape operands
// (Reshape's `shape`, Slice's `starts`, …), mode switches (Dropout's `training_mode`) and learned parameters
// (Conv's `W`, BatchNormalization's `mean`, …).
// FlashMem compiles static shapes and keeps weights in images it fills from the bundle, so, as a user would with
// `--pin-input`, the harness turns those inputs into initializers of the model (with the test's own values)
// before compiling; everything else (the data a kernel reads) stays a run-time input, so a pinned test still
// tests the kernel, and for weights it tests the path real models take (packed weight images, streamed).
// Only the operand positions listed below are pinned, each by ONNX's operator spec; --no-pin-shape-operands and
// --no-pin-weights turn either kind off. MatMul and Gemm operands are never pinned: activation × activation
// products (attention) are a case the compiler must handle. Owned by fmc-conformance.

import COnnx
import CProtobufC
import Foundation

enum PinnedInputs {
    /// Operator → the input positions that are shape, axis or mode operands (ONNX operator spec).
    static let shapeOperands: [String: [Int]] = [
        "Reshape": [1],                 // shape
        "Expand": [1],                  // shape
        "Tile": [1],                    // repeats
        "Slice": [1, 2, 3, 4],          // starts, ends, axes, steps (opset ≥ 10)
        "Squeeze": [1],                 // axes (opset ≥ 13)
        "Unsqueeze": [1],               // axes (opset ≥ 13)
        "ReduceSum": [1], "ReduceMean": [1], "ReduceMax": [1], "ReduceMin": [1], "ReduceProd": [1],
        "ReduceL1": [1], "ReduceL2": [1], "ReduceLogSum": [1], "ReduceLogSumExp": [1],
        "ReduceSumSquare": [1],         // axes (opset ≥ 13 / 18)
        "Split": [1],                   // split
        "Pad": [1, 3],                  // pads, axes (constant_value stays an input)
        "Resize": [1, 2, 3],            // roi, scales, sizes
        "Upsample": [1],                // scales
        "ConstantOfShape": [0],         // input (the shape)
        "Range": [0, 1, 2],             // start, limit, delta: they decide the length
        "OneHot": [1],                  // depth
        "TopK": [1],                    // K
        "CumSum": [1], "CumProd": [1],  // axis
        "Trilu": [1],                   // k
        "CenterCropPad": [1],           // shape
        "Col2Im": [1, 2],               // image_shape, block_shape
        "AffineGrid": [1],              // size
        "HannWindow": [0], "HammingWindow": [0], "BlackmanWindow": [0],  // size
        "Dropout": [1, 2],              // ratio, training_mode (a hyperparameter and a mode switch)
    ]

    /// Operator → the input positions that are learned parameters, which models hold as initializers and the
    /// compiler requires to be constants (weight images, folded normalization parameters).
    static let weights: [String: [Int]] = [
        "Conv": [1, 2],                 // W, B
        "ConvTranspose": [1, 2],        // W, B
        "BatchNormalization": [1, 2, 3, 4],  // scale, B, input_mean, input_var
        "InstanceNormalization": [1, 2],     // scale, B
        "LayerNormalization": [1, 2],        // Scale, B
        "GroupNormalization": [1, 2],        // scale, bias
        "RMSNormalization": [1],             // scale
        "LSTM": [1, 2, 3], "GRU": [1, 2, 3], "RNN": [1, 2, 3],  // W, R, B
    ]

    /// The graph inputs of `model` to pin, in graph-input order.
    static func inputsToPin(_ model: ModelInfo, shapeOperands pinShapes: Bool, weights pinWeights: Bool) -> [String] {
        var wanted = Set<String>()
        for node in model.nodes where node.domain.isEmpty || node.domain == "ai.onnx" {
            let positions = (pinShapes ? shapeOperands[node.opType] ?? [] : [])
                + (pinWeights ? weights[node.opType] ?? [] : [])
            for i in positions where i < node.inputs.count && !node.inputs[i].isEmpty {
                wanted.insert(node.inputs[i])
            }
        }
        return model.inputs.map(\.name).filter { wanted.contains($0) && !model.initializers.contains($0) }
    }

    /// Writes a copy of the model at `modelPath` to `outputPath` in which each input in `values` (name → the
    /// serialized TensorProto of its test value) is an initializer instead of a graph input.
    static func writePinnedModel(modelPath: String, values: [String: String], to outputPath: String) throws {
        guard let modelData = FileManager.default.contents(atPath: modelPath) else {
            throw TestDataError(path: modelPath, reason: "cannot read the model")
        }
        let packed: [UInt8] = try modelData.withUnsafeBytes { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self),
                  let model = onnx__model_proto__unpack(nil, raw.count, base),
                  let graph = model.pointee.graph else {
                throw TestDataError(path: modelPath, reason: "not an ONNX model (protobuf parse failed)")
            }
            defer { onnx__model_proto__free_unpacked(model, nil) }

            // Unpack each pinned value and name it after the input it replaces.
            var tensors: [UnsafeMutablePointer<Onnx__TensorProto>] = []
            var names: [UnsafeMutablePointer<CChar>] = []
            var originalNames: [UnsafeMutablePointer<CChar>?] = []
            defer {
                for (t, original) in zip(tensors, originalNames) { t.pointee.name = original }
                names.forEach { free($0) }
                tensors.forEach { onnx__tensor_proto__free_unpacked($0, nil) }
            }
            for (name, path) in values.sorted(by: { $0.key < $1.key }) {
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw TestDataError(path: path, reason: "cannot read the file")
                }
                let tensor = try data.withUnsafeBytes { raw -> UnsafeMutablePointer<Onnx__TensorProto> in
                    guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self),
                          let t = onnx__tensor_proto__unpack(nil, raw.count, base) else {
                        throw TestDataError(path: path, reason: "not a serialized TensorProto")
                    }
                    return t
                }
                tensors.append(tensor)
                originalNames.append(tensor.pointee.name)
                let copy = strdup(name)!
                names.append(copy)
                tensor.pointee.name = copy
            }

            // Swap in the longer initializer list and the shorter input list for packing; the originals go back
            // before protobuf-c frees the message.
            let oldInitializers = graph.pointee.initializer, oldInitializerCount = graph.pointee.n_initializer
            let oldInputs = graph.pointee.input, oldInputCount = graph.pointee.n_input
            let initializers = UnsafeMutablePointer<UnsafeMutablePointer<Onnx__TensorProto>?>
                .allocate(capacity: oldInitializerCount + tensors.count)
            let inputs = UnsafeMutablePointer<UnsafeMutablePointer<Onnx__ValueInfoProto>?>
                .allocate(capacity: max(oldInputCount, 1))
            defer {
                graph.pointee.initializer = oldInitializers
                graph.pointee.n_initializer = oldInitializerCount
                graph.pointee.input = oldInputs
                graph.pointee.n_input = oldInputCount
                initializers.deallocate()
                inputs.deallocate()
            }
            for i in 0..<oldInitializerCount { initializers[i] = oldInitializers?[i] }
            for (i, t) in tensors.enumerated() { initializers[oldInitializerCount + i] = t }
            var kept = 0
            for i in 0..<oldInputCount {
                guard let input = oldInputs?[i] else { continue }
                if values[cString(input.pointee.name)] == nil {
                    inputs[kept] = input
                    kept += 1
                }
            }
            graph.pointee.initializer = initializers
            graph.pointee.n_initializer = oldInitializerCount + tensors.count
            graph.pointee.input = inputs
            graph.pointee.n_input = kept

            let size = onnx__model_proto__get_packed_size(model)
            var out = [UInt8](repeating: 0, count: size)
            let written = out.withUnsafeMutableBufferPointer { onnx__model_proto__pack(model, $0.baseAddress!) }
            guard written == size else {
                throw TestDataError(path: modelPath, reason: "packing the pinned model wrote \(written) of \(size) bytes")
            }
            return out
        }
        guard FileManager.default.createFile(atPath: outputPath, contents: Data(packed)) else {
            throw TestDataError(path: outputPath, reason: "cannot write the pinned model")
        }
    }
}
