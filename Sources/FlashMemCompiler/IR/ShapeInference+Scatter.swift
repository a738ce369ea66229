// Shape rules of ScatterND and OneHot, and the parsing of their operands, which constant folding
// (ConstantFolding+Scatter.swift) and the lowering (Lowering+Scatter.swift) reuse. Owned by the data-movement
// family.

extension ShapeInference {
    static let scatterShapes: [String: ShapeRule] = [
        "ScatterND": { c in
            let data = try c.input(0), indices = try c.input(1), updates = try c.input(2)
            _ = try ScatterOperands.scatterND(c, data: data.shape, indices: indices, updates: updates)
            guard data.dtype == updates.dtype else {
                throw c.fail("data is \(data.dtype) but updates are \(updates.dtype)")
            }
            return [data]
        },
        "OneHot": { c in
            let indices = try c.input(0), values = try c.input(2)
            let oneHot = try ScatterOperands.oneHot(c, indices: indices.shape)
            guard try ShapeRules.product(values.shape) == 2, values.shape.count == 1 else {
                throw c.fail("values must be [off_value, on_value] (shape [2]), not \(IRText.shape(values.shape))")
            }
            return [TensorType(dtype: values.dtype, shape: oneHot.outputShape)]
        },
    ]
}

/// The operands of ScatterND and OneHot, read and checked once. Every function throws a `CompileError` naming the
/// node.
enum ScatterOperands {
    /// ScatterND (opsets 11–18): indices [..., k] address slices data[i0, …, ik-1, :, …] of `sliceSize` elements.
    struct ScatterND: Equatable {
        /// The number of index tuples (product of indices' leading dimensions).
        var updates: Int
        /// k, the length of one index tuple.
        var depth: Int
        /// Elements of one addressed slice (product of data's dimensions from k on).
        var sliceSize: Int
        /// data's first k dimensions (what an index tuple addresses).
        var indexedShape: [Int]
        /// The reduction (opset 16 'none', 'add', 'mul'; 18 'max', 'min').
        var reduction: Reduction

        enum Reduction: UInt32 {
            case none = 0, add, mul, max, min
        }
    }

    static func scatterND(_ c: NodeContext, data: [Int], indices: TensorType, updates: TensorType) throws -> ScatterND {
        guard indices.dtype == .int64 || indices.dtype == .int32 else {
            throw c.fail("indices must be int64, not \(indices.dtype)")
        }
        guard let k = indices.shape.last, indices.shape.count >= 1 else { throw c.fail("indices must have rank ≥ 1") }
        guard k >= 1, k <= data.count else {
            throw c.fail("the last dimension of indices \(IRText.shape(indices.shape)) must be in 1...\(data.count) "
                + "(the rank of data \(IRText.shape(data)))")
        }
        let expected = Array(indices.shape.dropLast()) + Array(data[k...])
        guard updates.shape == expected else {
            throw c.fail("updates are \(IRText.shape(updates.shape)); expected \(IRText.shape(expected)) "
                + "(indices' leading dimensions, then data's dimensions after the \(k) indexed ones)")
        }
        let name = c.node.string("reduction") ?? "none"
        let reduction: ScatterND.Reduction
        switch name {
        case "none": reduction = .none
        case "add": reduction = .add
        case "mul": reduction = .mul
        case "max": reduction = .max
        case "min": reduction = .min
        default: throw c.fail("reduction '\(name)' is not one of none, add, mul, max, min")
        }
        return ScatterND(updates: try ShapeRules.product(indices.shape.dropLast()), depth: k,
                         sliceSize: try ShapeRules.product(data[k...]), indexedShape: Array(data[..<k]),
                         reduction: reduction)
    }

    /// OneHot (opsets 9–11): the output is indices' shape with `depth` inserted at `axis`.
    struct OneHot: Equatable {
        var depth: Int
        /// The normalized axis of the output.
        var axis: Int
        var outputShape: [Int]
        /// Elements of the output after the depth axis (= of indices after axis).
        var inner: Int
    }

    static func oneHot(_ c: NodeContext, indices: [Int]) throws -> OneHot {
        _ = try c.input(1)
        guard let depthTensor = c.constant(1) else {
            throw c.fail("depth (input 1) is not a compile-time constant")
        }
        guard depthTensor.elementCount == 1 else {
            throw c.fail("depth must hold one value, not \(IRText.shape(depthTensor.shape))")
        }
        let real = depthTensor.reals()[0]
        guard real.isFinite, real >= 1, real <= Double(ShapeRules.maxDimension) else {
            throw c.fail("depth \(real) is not a positive size")
        }
        let depth = Int(real)  // ONNX: a float depth is truncated
        let axis = try ShapeRules.axis(c.node.int("axis", default: -1), rank: indices.count + 1)
        var shape = indices
        shape.insert(depth, at: axis)
        return OneHot(depth: depth, axis: axis, outputShape: shape, inner: try ShapeRules.product(indices[axis...]))
    }
}
