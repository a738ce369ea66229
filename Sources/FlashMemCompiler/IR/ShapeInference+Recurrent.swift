// Shape rules of the recurrent ops: LSTM (opsets 7–22; `layout` from opset 14). Owned by the recurrent family
// (lowering: Lowering+Recurrent.swift).

extension ShapeInference {
    static let recurrentShapes: [String: ShapeRule] = ["LSTM": lstmShape]

    /// The sizes an LSTM node works with, read from its inputs and attributes and checked against each other.
    struct LSTMDimensions: Equatable {
        var seqLength: Int
        var batch: Int
        var inputSize: Int
        var hidden: Int
        var directions: Int
        /// 0: X [seq, batch, input], states [dirs, batch, hidden]; 1: X [batch, seq, input], states
        /// [batch, dirs, hidden].
        var layout: Int

        /// Y: [seq, dirs, batch, hidden] (layout 0) or [batch, seq, dirs, hidden] (layout 1).
        var yShape: [Int] {
            layout == 0 ? [seqLength, directions, batch, hidden] : [batch, seqLength, directions, hidden]
        }

        /// Y_h, Y_c, initial_h, initial_c: [dirs, batch, hidden] (layout 0) or [batch, dirs, hidden] (layout 1).
        var stateShape: [Int] {
            layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden]
        }
    }

    /// Directions of the `direction` attribute: forward, reverse (1 each) or bidirectional (2).
    static func lstmDirections(_ c: NodeContext) throws -> Int {
        switch c.node.string("direction") ?? "forward" {
        case "forward", "reverse": return 1
        case "bidirectional": return 2
        case let other: throw c.fail("direction '\(other)' is not one of forward, reverse, bidirectional")
        }
    }

    /// Reads and checks X, W, R and the optional B, sequence_lens, initial_h, initial_c, P.
    static func lstmDimensions(_ c: NodeContext) throws -> LSTMDimensions {
        let x = try c.input(0), w = try c.input(1), r = try c.input(2)
        guard x.dtype.isFloat else { throw c.fail("X is \(x.dtype); only float tensors are supported") }
        try c.requireSameDType([x, w, r])
        let layout = c.node.int("layout", default: 0)
        guard layout == 0 || layout == 1 else { throw c.fail("layout \(layout) is not 0 or 1") }
        guard x.shape.count == 3 else { throw c.fail("X must be 3-D, not \(IRText.shape(x.shape))") }
        let dirs = try lstmDirections(c)
        guard w.shape.count == 3, w.shape[0] == dirs, w.shape[1] % 4 == 0, w.shape[2] == x.shape[2] else {
            throw c.fail("W is \(IRText.shape(w.shape)); expected [\(dirs), 4·hidden_size, \(x.shape[2])]")
        }
        let hidden = c.node.int("hidden_size", default: w.shape[1] / 4)
        // Bounded first: 4·hidden_size must not overflow for any int64 attribute.
        guard hidden >= 1, hidden <= ShapeRules.maxDimension, w.shape[1] == 4 * hidden else {
            throw c.fail("W is \(IRText.shape(w.shape)) but hidden_size is \(hidden) (W[1] must be 4 × hidden_size)")
        }
        let dims = LSTMDimensions(seqLength: layout == 0 ? x.shape[0] : x.shape[1],
                                  batch: layout == 0 ? x.shape[1] : x.shape[0], inputSize: x.shape[2],
                                  hidden: hidden, directions: dirs, layout: layout)
        try requireShape(c, 2, [dirs, 4 * hidden, hidden], "R")
        try requireOptionalShape(c, 3, [dirs, 8 * hidden], "B")
        try requireOptionalShape(c, 4, [dims.batch], "sequence_lens")
        try requireOptionalShape(c, 5, dims.stateShape, "initial_h")
        try requireOptionalShape(c, 6, dims.stateShape, "initial_c")
        try requireOptionalShape(c, 7, [dirs, 3 * hidden], "P")
        return dims
    }

    /// Y, Y_h, Y_c (the outputs a node lists; an omitted one is skipped by the caller).
    private static func lstmShape(_ c: NodeContext) throws -> [TensorType] {
        let dims = try lstmDimensions(c)
        let dtype = try c.input(0).dtype
        let shapes = [dims.yShape, dims.stateShape, dims.stateShape]
        return shapes.prefix(c.node.outputs.count).map { TensorType(dtype: dtype, shape: $0) }
    }

    private static func requireShape(_ c: NodeContext, _ i: Int, _ expected: [Int], _ what: String) throws {
        let actual = try c.input(i).shape
        guard actual == expected else {
            throw c.fail("\(what) is \(IRText.shape(actual)); expected \(IRText.shape(expected))")
        }
    }

    private static func requireOptionalShape(_ c: NodeContext, _ i: Int, _ expected: [Int], _ what: String) throws {
        guard try c.optionalInput(i) != nil else { return }
        try requireShape(c, i, expected, what)
    }
}
