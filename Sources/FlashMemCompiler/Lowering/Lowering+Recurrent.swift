// LSTM → one gemm for the input projection of every time step, then one lstm_step.comp dispatch per time step.
//   G [seq·batch, dirs·4H] = X · Wᵀ + (Wb + Rb): lowered as a Gemm with transB over W viewed as [dirs·4H, input]
//     (so W and the summed biases become gemm.comp's / gemm_tiled.comp's weight image, split over K where
//     that fills the device);
//   step s (0 ..< seq): every direction and batch row at once, R in its own weight image (packRecurrent), the
//     peepholes, sequence_lens and initial states as arena buffers (constants where the node omits them).
// Default activations (Sigmoid, Tanh, Tanh), clip and input_forget are supported; other activation lists
// are refused. Owned by the recurrent family (shape rules: ShapeInference+Recurrent.swift).

import FMBFormat

extension LoweringContext {
    static let recurrentRules: [String: LoweringRule] = ["LSTM": { $0.lowerLSTM }]

    /// Shader families of the recurrent ops, for KernelCatalog.all.
    static let recurrentFamilies: [KernelFamily] = [KernelCatalog.lstmStep]

    func lowerLSTM(_ n: LoweringNode) throws {
        let dims = try lstmDimensions(n)
        try checkLSTMActivations(n, directions: dims.directions)
        let x = try input(n, 0)
        try requireFloat(n, [x])
        let w = try lstmWeight(n, 1, "W"), r = try lstmWeight(n, 2, "R")
        let bias = try optionalInput(n, 3).map { _ in try lstmWeight(n, 3, "B") }

        let gates = try emitLSTMInputProjection(n, x: x, w: w, bias: bias, dims: dims)
        let recurrent = image(named: try input(n, 2), values: Self.packRecurrent(r.floats(), dims: dims))
        let operands = try lstmStepOperands(n, dims: dims)
        try emitLSTMSteps(n, dims: dims, gates: gates, recurrent: recurrent, operands: operands)
    }

    // MARK: - Checks

    private func lstmDimensions(_ n: LoweringNode) throws -> ShapeInference.LSTMDimensions {
        let context = NodeContext(node: n.node, graph: graph)
        let dims: ShapeInference.LSTMDimensions
        do {
            dims = try ShapeInference.lstmDimensions(context)
        } catch let failure as CompileError {
            throw error(n, failure.message)
        }
        guard dims.seqLength >= 1, dims.batch >= 1 else {
            throw error(n, "an empty sequence or batch (X \(try shape(try input(n, 0), of: n))) is not supported")
        }
        guard dims.directions * dims.batch <= Lowering.maxGroupsPerAxis else {
            throw error(n, "\(dims.directions) directions × \(dims.batch) batch rows exceed the dispatch grid")
        }
        return dims
    }

    /// Only the default activations (f = Sigmoid, g = Tanh, h = Tanh per direction) are implemented.
    private func checkLSTMActivations(_ n: LoweringNode, directions: Int) throws {
        guard case .strings(let names)? = n.node.attributes["activations"] else { return }
        let defaults = Array(repeating: ["sigmoid", "tanh", "tanh"], count: directions).flatMap { $0 }
        guard names.map({ $0.lowercased() }) == defaults else {
            throw error(n, "activations=\(names) not supported (only the default Sigmoid, Tanh, Tanh)")
        }
    }

    /// W, R or B: a float constant (they become weight images).
    private func lstmWeight(_ n: LoweringNode, _ i: Int, _ what: String) throws -> ConstantTensor {
        let name = try input(n, i)
        guard let constant = initializers[name] else {
            throw error(n, "\(what) '\(name)' is computed at run time; only a constant (initializer) \(what) "
                + "is supported")
        }
        guard constant.dtype.isFloat else {
            throw error(n, "\(what) '\(name)' is \(constant.dtype); only float weights are supported")
        }
        return constant
    }

    // MARK: - Input projection

    /// Lowers G = X · Wᵀ + Wb + Rb as a Gemm over X viewed as [rows, input]; returns G's name.
    private func emitLSTMInputProjection(_ n: LoweringNode, x: String, w: ConstantTensor, bias: ConstantTensor?,
                                         dims: ShapeInference.LSTMDimensions) throws -> String {
        let rows = dims.seqLength * dims.batch, columns = dims.directions * 4 * dims.hidden
        _ = try read(x, for: n)
        let xRows = temporary("\(x)#rows", shape: [rows, dims.inputSize])
        try registerView(xRows, of: x, for: n)

        let weight = temporary("\(try input(n, 1))#lstm", shape: [columns, dims.inputSize])
        initializers[weight] = ConstantTensor(dtype: w.dtype, shape: [columns, dims.inputSize], bytes: w.bytes)
        var inputs = [xRows, weight]
        if let bias {
            let summed = temporary("\(try input(n, 3))#lstm", shape: [columns])
            initializers[summed] = LoweringPasses.constant(Self.summedBias(bias.floats(), dims: dims), shape: [columns])
            inputs.append(summed)
        }
        let gates = temporary("\(n.label)#gates", shape: [rows, columns])
        let gemm = Node(name: n.label, opType: "Gemm", inputs: inputs, outputs: [gates],
                        attributes: ["transB": .int(1)])
        try lowerGemm(LoweringNode(gemm))
        return gates
    }

    /// Wb + Rb per direction: B [dirs, 8H] → [dirs · 4H].
    static func summedBias(_ b: [Float], dims: ShapeInference.LSTMDimensions) -> [Float] {
        let h4 = 4 * dims.hidden
        return (0..<(dims.directions * h4)).map { i in
            let d = i / h4, g = i % h4
            return b[d * 2 * h4 + g] + b[d * 2 * h4 + h4 + g]
        }
    }

    /// R [dirs, 4H, H] in lstm_step.comp's read order: texel (d·H + k)·H + j = (R_i, R_o, R_f, R_c)[j, k].
    static func packRecurrent(_ r: [Float], dims: ShapeInference.LSTMDimensions) -> [Float] {
        let h = dims.hidden
        var out = [Float](repeating: 0, count: dims.directions * h * h * 4)
        for d in 0..<dims.directions {
            for gate in 0..<4 {
                for j in 0..<h {
                    let source = ((d * 4 + gate) * h + j) * h
                    for k in 0..<h {
                        out[((d * h + k) * h + j) * 4 + gate] = r[source + k]
                    }
                }
            }
        }
        return out
    }

    // MARK: - Time steps

    /// The arena tensors a step binds after G and R: P, lens, H0, C0, Y, YH, YC.
    private struct LSTMStepOperands {
        var peepholes: String
        var lengths: String
        var initialH: String
        var initialC: String
        var y: String
        var finalH: String
        var finalC: String
    }

    private func lstmStepOperands(_ n: LoweringNode, dims: ShapeInference.LSTMDimensions) throws -> LSTMStepOperands {
        let stateCount = elementCount(dims.stateShape)
        let lengths = optionalInput(n, 4) ?? intConstant("\(n.label)#sequence_lens",
                                                         [Int](repeating: dims.seqLength, count: dims.batch))
        let operands = LSTMStepOperands(
            peepholes: optionalInput(n, 7) ?? zeroConstant("\(n.label)#P", count: dims.directions * 3 * dims.hidden),
            lengths: lengths,
            initialH: optionalInput(n, 5) ?? zeroConstant("\(n.label)#initial_h", count: stateCount),
            initialC: optionalInput(n, 6) ?? zeroConstant("\(n.label)#initial_c", count: stateCount),
            y: output(n, 0, orTemporary: "Y", shape: dims.yShape),
            finalH: output(n, 1, orTemporary: "Y_h", shape: dims.stateShape),
            finalC: output(n, 2, orTemporary: "Y_c", shape: dims.stateShape))
        for input in [operands.peepholes, operands.lengths, operands.initialH, operands.initialC] {
            _ = try read(input, for: n)
        }
        try requireFloat(n, [operands.peepholes, operands.initialH, operands.initialC])
        if let dtype = dtype(operands.lengths), dtype.isFloat {
            throw error(n, "sequence_lens is \(dtype); expected int32")
        }
        for output in [operands.y, operands.finalH, operands.finalC] {
            _ = try write(output, for: n)
        }
        return operands
    }

    private func emitLSTMSteps(_ n: LoweringNode, dims: ShapeInference.LSTMDimensions, gates: String,
                               recurrent: LoweredBinding, operands o: LSTMStepOperands) throws {
        guard case .image(let imageIndex) = recurrent else { return }
        let extent = program.images[imageIndex]
        let wg = dims.hidden >= 128 ? 128 : 64
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.lstmStep, specConstants: [UInt32(wg)],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 4))
        let (h, batch, seq, dirs) = (dims.hidden, dims.batch, dims.seqLength, dims.directions)
        let layout0 = dims.layout == 0
        let gRows = layout0 ? (t: batch, b: 1) : (t: 1, b: seq)
        let yStrides = layout0 ? [dirs * batch * h, batch * h, h] : [dirs * h, h, seq * dirs * h]
        let stateStrides = layout0 ? [batch * h, h] : [h, dirs * h]
        let reverseMask: Int
        switch n.node.string("direction") ?? "forward" {
        case "reverse": reverseMask = 1
        case "bidirectional": reverseMask = 2
        default: reverseMask = 0
        }
        let bindings: [LoweredBinding] = [.tensor(gates), recurrent] + [o.peepholes, o.lengths, o.initialH, o.initialC,
                                                                         o.y, o.finalH, o.finalC].map { .tensor($0) }
        let groups = [UInt32(LoweringMath.ceilDiv(h, wg)), UInt32(dirs * batch), 1]
        let rowsPerStep = Double(dirs * batch)
        for step in 0..<seq {
            var push = PushConstants()
            push.append([h, batch, seq, step, dirs * 4 * h, gRows.t, gRows.b])
            push.append(yStrides)
            push.append(stateStrides)
            push.append([reverseMask, n.node.int("input_forget", default: 0) != 0 ? 1 : 0])
            push.append(n.node.float("clip", default: 0))
            push.append([ImageLayout.log2(extent.width), ImageLayout.log2(extent.height)])
            try emit(n, kernel: kernel, groups: groups, bindings: bindings, push: push,
                     flops: rowsPerStep * Double(h) * Double(8 * h + 30),
                     bytes: Double(imageBytes(recurrent)) + rowsPerStep * Double(h * 4 * 8))
        }
    }

    // MARK: - Helpers

    /// Output `i`'s name, or a fresh temporary of `shape` when the node omits it.
    private func output(_ n: LoweringNode, _ i: Int, orTemporary what: String, shape: [Int]) -> String {
        if i < n.node.outputs.count, !n.node.outputs[i].isEmpty { return n.node.outputs[i] }
        return temporary("\(n.label)#\(what)", shape: shape)
    }

    /// A float32 constant of `count` zeros, registered under a fresh name.
    private func zeroConstant(_ base: String, count: Int) -> String {
        let name = temporary(base, shape: [count])
        initializers[name] = LoweringPasses.constant([Float](repeating: 0, count: count), shape: [count])
        return name
    }

    /// An int32 constant holding `ints`, registered under a fresh name.
    private func intConstant(_ base: String, _ ints: [Int]) -> String {
        let name = temporary(base, shape: [ints.count])
        let bytes = ints.map { Int32($0) }.withUnsafeBytes { [UInt8]($0) }
        initializers[name] = ConstantTensor(dtype: .int32, shape: [ints.count], bytes: TensorBytes(bytes))
        return name
    }
}

extension KernelCatalog {
    /// G, R weights, P, lens, H0, C0, Y, YH, YC. Push: H batch seq step gWidth gRowT gRowB yT yD yB sD sB
    /// reverseMask inputForget clip log2W log2H.
    static let lstmStep = KernelFamily(
        file: "lstm_step.comp",
        bindings: [.storageBuffer, .storageImage] + [BindingKind](repeating: .storageBuffer, count: 7),
        pushConstantSize: 17 * 4, axes: [])
}
