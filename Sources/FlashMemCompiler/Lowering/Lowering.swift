// Lowering: graph IR (static shapes) → kernels, dispatches, arena tensors and pre-packed weight images.
// This file is the driver and the bookkeeping every rule shares; each op family's rule lives in
// Lowering+<Family>.swift, graph rewrites (BatchNorm folding, Relu / GELU fusion, attention fusion) in
// LoweringPasses*.swift.
//
// Conventions the rules follow:
//   * every value a kernel reads or writes becomes an ArenaTensor of elements × 4 bytes (fp32 / int32);
//   * constants a kernel binds as a buffer become resident ArenaTensors (`constant:`, fp32 or int32);
//   * constant weights of Conv / Gemm / MatMul become WeightImages packed by WeightPacking;
//   * views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) become `viewOf` tensors, no kernel;
//     `viewOf` always names the root tensor (never another view).

import FMBFormat

/// Storage precision of weight images. Activations and arithmetic are fp32 in both.
public enum Precision: String, Sendable, CaseIterable {
    case fp32
    case fp16

    public var imageFormat: ImageFormat { self == .fp16 ? .rgba16f : .rgba32f }
}

extension ImageFormat {
    /// The WEIGHT_FORMAT define of kernels that read weight images of this format (the GLSL format qualifier).
    var glslLayout: String {
        switch self {
        case .rgba32f: "rgba32f"
        case .rgba16f: "rgba16f"
        case .half8: "rgba32ui"
        }
    }
}

public enum Lowering {
    /// Lowers a shape-inferred graph (`graph.values[v].staticShape` known for every value a kernel touches).
    /// The graph is not modified. `maxImageBytes` bounds the bytes of one weight image (its padded extent):
    /// larger weights of Gemm / MatMul, Gather and Conv are cut into pieces, each its own image and step
    /// (Lowering+Pieces.swift), and listed in `LoweredProgram.splits`; nil = no limit, one image per weight.
    /// `cooperativeMatrix`: Gemm / MatMul with a constant B may run on tensor cores (gemm_cm.comp, which needs
    /// VK_NV_cooperative_matrix: `DeviceFeatures.cooperativeMatrixNV`) where the shape suits them.
    public static func lower(_ graph: Graph, precision: Precision, maxImageBytes: Int? = nil,
                             cooperativeMatrix: Bool = false) throws -> LoweredProgram {
        try lower(graph, precision: precision, maxImageBytes: maxImageBytes, cooperativeMatrix: cooperativeMatrix,
                  compiler: ShaderCompiler())
    }

    /// As above with a caller-owned compiler (its cache is then shared across graphs).
    ///
    /// - Parameter imageSink: when set, receives every weight image as soon as it is packed, in
    ///   `LoweredProgram.images` order, and the program keeps the image without its texels (`texels` empty):
    ///   the compiler writes each weight out and drops it, so the packed weights are never all in memory.
    /// - Parameter coopmatTile: with `cooperativeMatrix`, the tensor-core tile of every product that takes one,
    ///   instead of `Lowering.coopmatTile`'s rule (for tuning: `fmc compile --coopmat-tile`).
    /// - Parameter attentionFusion: which attentions become one attention.comp step (`AttentionFusionRule`;
    ///   `fmc compile` takes it from the target, `CompileOptions.attentionFusionRule`).
    /// - Parameter cooperativeMatrixProducts: with `cooperativeMatrix`, products of two activations run on tensor
    ///   cores too (matmul_cm.comp); `fmc compile` asks for it with `--tensor-cores on` only (`Compiler.compile`),
    ///   since its numbers are not yet measured on a device.
    public static func lower(_ graph: Graph, precision: Precision, maxImageBytes: Int? = nil,
                             cooperativeMatrix: Bool = false, cooperativeMatrixProducts: Bool = false,
                             coopmatTile: CoopmatTile? = nil,
                             attentionFusion: AttentionFusionRule = .always, compiler: ShaderCompiler,
                             imageSink: ((WeightImage) -> Void)? = nil) throws -> LoweredProgram {
        let context = LoweringContext(graph: graph, precision: precision, maxImageBytes: maxImageBytes,
                                      cooperativeMatrix: cooperativeMatrix, compiler: compiler)
        context.cooperativeMatrixProducts = cooperativeMatrix && cooperativeMatrixProducts
        context.coopmatTileOverride = coopmatTile
        context.attentionFusion = attentionFusion
        context.imageSink = imageSink
        try context.run()
        // Copies folded into later copies leave kernels without steps; each would cost a pipeline.
        context.program.removeUnusedKernels()
        return context.program
    }

    /// Most workgroups a dispatch may have along one axis (Vulkan's guaranteed maxComputeWorkGroupCount).
    static let maxGroupsPerAxis = 65535

    /// Workgroups a dispatch should have to fill the largest device we target: about two per SM of an H100
    /// (132 SMs). Below it, matmul-like kernels split K (split-K partial sums + splitk_reduce.comp).
    static let targetWorkgroups = 264

    /// How to split a reduction of depth `k` over slices when `tiles` output tiles would not fill one wave
    /// (targetWorkgroups / 2): about `targetWorkgroups` workgroups then, each slice at least `minDepth` deep
    /// and a multiple of `step`.
    static func splitK(tiles: Int, k: Int, step: Int, minDepth: Int) -> (slices: Int, kPerSlice: Int) {
        let whole = LoweringMath.ceilDiv(max(k, 1), step) * step
        guard tiles < targetWorkgroups / 2 else { return (1, whole) }
        let wanted = LoweringMath.ceilDiv(targetWorkgroups, max(tiles, 1))
        let most = max(1, k / max(minDepth, step))
        let slices = min(wanted, most)
        guard slices > 1 else { return (1, whole) }
        let kPerSlice = LoweringMath.ceilDiv(LoweringMath.ceilDiv(k, slices), step) * step
        return (LoweringMath.ceilDiv(k, kPerSlice), kPerSlice)
    }

    /// Register tiles (row quads, column quads per invocation) of the shared-memory matmul kernels: 8 × 8
    /// (128 × 128 tiles, 33 TFLOP/s on a 2048³ product on an H100) where they still make a full wave of
    /// workgroups, else 4 × 4 (64 × 64 tiles).
    static func tileShape(m: Int, n: Int, batches: Int = 1) -> (Int, Int) {
        let large = LoweringMath.ceilDiv(m, 128) * LoweringMath.ceilDiv(n, 128) * batches
        return large >= targetWorkgroups / 2 ? (2, 2) : (1, 1)
    }

    /// Workgroup counts for `items` independent work items, `perGroup` per workgroup, spread over x and y when
    /// they exceed 65535 groups (kernels use common.glsl flatInvocation / flatWorkGroup). nil if even that
    /// does not fit.
    static func groups1D(items: Int, perGroup: Int) -> [UInt32]? {
        let groups = max(1, LoweringMath.ceilDiv(items, perGroup))
        if groups <= maxGroupsPerAxis {
            return [UInt32(groups), 1, 1]
        }
        let y = LoweringMath.ceilDiv(groups, maxGroupsPerAxis)
        guard y <= maxGroupsPerAxis else { return nil }
        return [UInt32(maxGroupsPerAxis), UInt32(y), 1]
    }
}

/// A node on its way to kernels: the IR node plus what the passes decided about it.
struct LoweringNode {
    var node: Node
    /// Activation fused into this node's kernel (a Relu or Gelu that consumed its only output).
    var activation: FusedActivation = .none
    /// For step labels and errors: node name(s), e.g. "conv1+bn1+relu1".
    var label: String
    /// Set for the nodes of an If branch decided at run time: their steps run only when it holds.
    var predicate: LoweredPredicate?
    /// A MatMul's fused bias: the constant added along the last axis of its product (`fuseMatMulBias`).
    var bias: String?
    /// A MatMul's or Gemm's fused residual: an activation of the product's shape added in its epilogue
    /// (`fuseResidualAdd`).
    var residual: String?
    /// A Mul's activation of its second input before the product (`fuseGatedActivation`: a GEGLU's x · gelu(gate)).
    var operandActivation: FusedActivation = .none

    init(_ node: Node) {
        self.node = node
        self.label = node.name.isEmpty ? (node.outputs.first ?? node.opType) : node.name
    }

    var op: String { node.opType }
}

/// Matches ACT_* in common.glsl.
enum FusedActivation: UInt32 {
    case none = 0
    case relu = 1
    /// GELU, exact (erf) and the tanh approximation: ACT_GELU / ACT_GELU_TANH in common.glsl.
    case gelu = 2
    case geluTanh = 3
}

/// The state of one lowering. Rules call its helpers to register tensors, kernels, images and steps.
final class LoweringContext {
    let file: String
    let precision: Precision
    /// The most bytes one weight image may take (nil: no limit); see Lowering+Pieces.swift.
    let maxImageBytes: Int?
    /// Kernels on tensor cores (cooperative matrices) are allowed; see Lowering.lower.
    let cooperativeMatrix: Bool
    /// Products of two activations on tensor cores too (matmul_cm.comp); see Lowering.lower.
    var cooperativeMatrixProducts = false
    /// The tensor-core tile every product uses instead of `Lowering.coopmatTile`'s rule; see Lowering.lower.
    var coopmatTileOverride: CoopmatTile?
    /// Which attentions `LoweringPasses.fuseAttention` fuses; see Lowering.lower.
    var attentionFusion = AttentionFusionRule.always
    let compiler: ShaderCompiler
    var values: [String: ValueInfo]
    var initializers: [String: ConstantTensor]
    var nodes: [LoweringNode]
    /// The graph being lowered; once run-time Ifs are expanded, a copy whose nodes, constants and values include
    /// their branches' (so rules that parse operands through a NodeContext see them). The graph object given to
    /// `Lowering.lower` is never modified.
    var graph: Graph
    var program = LoweredProgram()
    /// Per root tensor of a copy step read by several movement ops: the readers (their first outputs) that already
    /// read its source through composed strides (`composableCopy`); the copy goes once the last one has.
    var composedReaders: [String: Set<String>] = [:]
    private var kernelIndex: [String: Int] = [:]
    /// The predicate of the node being lowered; `emit` gives it to every step.
    private var stepPredicate: LoweredPredicate?
    private var imageNames: Set<String> = []
    /// See `Lowering.lower(_:precision:maxImageBytes:compiler:imageSink:)`.
    var imageSink: ((WeightImage) -> Void)?
    /// The mapped files of constants the passes derived from the model's weights (`DerivedConstant`).
    private var derivedFiles: [MappedFile] = []
    /// Steps `fuseHalfOutputs` may merge, as the rules emitted them (Lowering+HalfOutputs.swift).
    var halfOutputCandidates = HalfOutputCandidates()

    init(graph: Graph, precision: Precision, maxImageBytes: Int? = nil, cooperativeMatrix: Bool = false,
         compiler: ShaderCompiler) {
        self.graph = graph
        self.file = graph.sourcePath
        self.precision = precision
        self.maxImageBytes = maxImageBytes
        self.cooperativeMatrix = cooperativeMatrix
        self.compiler = compiler
        self.values = graph.values
        self.initializers = graph.initializers
        self.nodes = graph.nodes.map(LoweringNode.init)
    }

    /// Makes `graph` a new graph of the current nodes, constants and values, so rules that parse operands through a
    /// NodeContext see what the passes added; the graph given to `Lowering.lower` stays as it was.
    func refreshGraph() {
        let copy = Graph(name: graph.name, nodes: nodes.map(\.node), inputs: graph.inputs, outputs: graph.outputs,
                         initializers: initializers, values: values, opset: graph.opset, sourcePath: graph.sourcePath)
        copy.sourceFiles = graph.sourceFiles
        graph = copy
    }

    /// `parts` concatenated in a mapped temporary file (`DerivedConstant`), whose pages go with the model's.
    func deriveConcatenation(_ parts: [ConstantTensor], axis: Int, shape: [Int]) throws -> ConstantTensor {
        do {
            let (tensor, file) = try DerivedConstant.concatenate(parts, axis: axis, shape: shape)
            derivedFiles.append(file)
            releaseSourcePages()  // the parts were read
            return tensor
        } catch let failure as FileError {
            throw CompileError(file: file, "could not write a concatenated weight to a temporary file: \(failure) "
                               + "(set TMPDIR to a directory with room)")
        }
    }

    /// Drops the resident pages of the model's mapped files and of the derived constants' (they stay in the page
    /// cache): after each packed image (`image(named:values:)`), so lowering a model of any size never holds more of
    /// its weights than the one being packed.
    func releaseSourcePages() {
        graph.releaseSourcePages()
        for file in derivedFiles { file.dropResidentPages() }
    }

    func run() throws {
        let outputs = Set(graph.outputs.map(\.name))
        try expandRuntimeIfs()  // Lowering+ControlFlow.swift
        try expandTrainingBatchNorms()  // Lowering+BatchNormTraining.swift
        try expandEinsums()  // Lowering+Einsum.swift
        LoweringPasses.foldBatchNorm(&nodes, initializers: &initializers, graphOutputs: outputs)
        LoweringPasses.recognizeGelu(&nodes, initializers: initializers, values: values, graphOutputs: outputs)
        LoweringPasses.fuseMatMulBias(&nodes, initializers: initializers, values: values, graphOutputs: outputs)
        if try LoweringPasses.fuseSharedInputProducts(&nodes, initializers: &initializers, values: &values,
                                                      graphOutputs: outputs, concatenateWeights: deriveConcatenation) {
            refreshGraph()  // its Slices' constant operands, for the shape rules
        }
        LoweringPasses.fuseResidualAdd(&nodes, initializers: initializers, values: values, graphOutputs: outputs)
        LoweringPasses.fuseActivations(&nodes, graphOutputs: outputs)
        LoweringPasses.fuseGatedActivation(&nodes, graphOutputs: outputs)
        let splits = LoweringPasses.fuseAttention(&nodes, initializers: initializers, values: values,
                                                  graphOutputs: outputs, opset: graph.opset, rule: attentionFusion,
                                                  halfPrecision: precision == .fp16)
        try splitAttentions(splits)  // Lowering+AttentionSplit.swift
        LoweringPasses.fuseProductScale(&nodes, initializers: initializers, graphOutputs: outputs)

        // Graph inputs first (an initializer listed as an input, IR < 4 style, is a constant, not an input).
        for input in graph.inputs where initializers[input.name] == nil {
            program.inputs.append(try ioBinding(input))
            try registerActivation(input.name, producer: nil)
        }
        for node in nodes {
            try lower(node)
        }
        try fuseHalfOutputs(graphOutputs: outputs)  // Lowering+HalfOutputs.swift
        for output in graph.outputs {
            if program.tensors[output.name] == nil {
                if initializers[output.name] != nil {
                    try registerConstant(output.name, for: nil)
                } else {
                    throw CompileError(file: file, "model output '\(output.name)' is not computed by any node")
                }
            }
            program.outputs.append(try ioBinding(output))
        }
    }

    private func lower(_ n: LoweringNode) throws {
        guard n.node.domain.isEmpty || n.node.domain == "ai.onnx" else {
            throw error(n, "operator domain '\(n.node.domain)' is not supported")
        }
        stepPredicate = n.predicate
        defer { stepPredicate = nil }
        switch n.op {
        case "Conv": try lowerConv(n)
        case "Gemm": try lowerGemm(n)
        case "MatMul": try lowerMatMul(n)
        case "Add", "Sub", "Mul", "Div": try lowerBinary(n)
        case "Relu", "Sigmoid", "Tanh": try lowerUnary(n)
        case "MaxPool", "AveragePool": try lowerPool(n)
        case "GlobalAveragePool": try lowerGlobalAveragePool(n)
        case "Softmax": try lowerSoftmax(n)
        case LoweringPasses.attentionOp: try lowerAttention(n)
        case "BatchNormalization": try lowerBatchNorm(n)
        case "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout": try lowerView(n)
        case "Constant": try lowerConstantNode(n)
        case LoweringContext.branchResultOp: try lowerBranchResult(n)
        default:
            guard let rule = LoweringContext.familyRules[n.op] else {
                throw error(n, "operator '\(n.op)' is not supported by the lowering")
            }
            try rule(self)(n)
        }
    }

    // MARK: - Errors and shapes

    func error(_ n: LoweringNode, _ message: String) -> CompileError {
        CompileError(file: file, node: n.label, op: n.op, message)
    }

    /// Input `i` of `n`, which must be present (non-empty).
    func input(_ n: LoweringNode, _ i: Int) throws -> String {
        guard i < n.node.inputs.count, !n.node.inputs[i].isEmpty else {
            throw error(n, "input \(i) is missing")
        }
        return n.node.inputs[i]
    }

    /// Optional input `i` of `n` (nil when absent or "").
    func optionalInput(_ n: LoweringNode, _ i: Int) -> String? {
        i < n.node.inputs.count && !n.node.inputs[i].isEmpty ? n.node.inputs[i] : nil
    }

    func output(_ n: LoweringNode, _ i: Int = 0) throws -> String {
        guard i < n.node.outputs.count, !n.node.outputs[i].isEmpty else {
            throw error(n, "output \(i) is missing")
        }
        return n.node.outputs[i]
    }

    /// The static shape of a value (constants: their own shape).
    func shape(_ value: String, of n: LoweringNode?) throws -> [Int] {
        if let constant = initializers[value] {
            return constant.shape
        }
        guard let shape = values[value]?.staticShape else {
            let message = "the shape of '\(value)' is unknown (shape inference must run before lowering)"
            if let n { throw error(n, message) }
            throw CompileError(file: file, message)
        }
        return shape
    }

    func dtype(_ value: String) -> DType? {
        initializers[value]?.dtype ?? values[value]?.dtype
    }

    /// Fails unless every input and output of `n` that is a tensor is a float tensor.
    func requireFloat(_ n: LoweringNode, _ names: [String]) throws {
        for name in names {
            if let dtype = dtype(name), !dtype.isFloat {
                throw error(n, "'\(name)' is \(dtype); only float tensors are supported by this operator")
            }
        }
    }

    func elementCount(_ shape: [Int]) -> Int {
        shape.reduce(1, *)
    }

    // MARK: - Arena tensors

    /// The binding of a value a kernel reads: an arena tensor computed earlier, a graph input, or a
    /// constant (made a resident arena tensor here).
    func read(_ value: String, for n: LoweringNode) throws -> LoweredBinding {
        if program.tensors[value] == nil {
            if initializers[value] != nil {
                try registerConstant(value, for: n)
            } else {
                throw error(n, "reads '\(value)', which no earlier node computes")
            }
        }
        return .tensor(value)
    }

    /// The binding of a value a kernel writes (registered here).
    func write(_ value: String, for n: LoweringNode) throws -> LoweredBinding {
        try registerActivation(value, producer: n)
        return .tensor(value)
    }

    /// Registers the arena tensor of a computed value or graph input: elements × 4 bytes.
    func registerActivation(_ value: String, producer: LoweringNode?) throws {
        let shape = try shape(value, of: producer)
        let count = elementCount(shape)
        guard count < Int(UInt32.max) / 4 else {
            let message = "'\(value)' has \(count) elements; tensors are limited to 2³⁰ elements"
            if let producer { throw error(producer, message) }
            throw CompileError(file: file, message)
        }
        program.tensors[value] = ArenaTensor(name: value, byteSize: count * 4)
    }

    /// Registers a constant as a resident arena tensor: fp32 for float dtypes, int32 for integer ones.
    func registerConstant(_ value: String, for n: LoweringNode?) throws {
        guard let constant = initializers[value] else { return }
        if constant.elementCount == 0 {
            program.tensors[value] = ArenaTensor(name: value, byteSize: 0)  // no bytes to upload
            return
        }
        if n == nil, constant.dtype == .int64, let wide = constant.ints().first(where: { Int32(exactly: $0) == nil }) {
            throw CompileError(file: file, "model output '\(value)' is a constant int64 holding \(wide), beyond int32, the "
                               + "runtime's integer type: int64 outputs beyond int32 are not supported")
        }
        let bytes: [UInt8]
        if constant.dtype.isFloat {
            bytes = ImageLayout.encode(constant.floats(), format: .rgba32f, paddedTo: 0)
        } else {
            var out: [UInt8] = []
            out.reserveCapacity(constant.elementCount * 4)
            for v in constant.ints() {
                withUnsafeBytes(of: Int32(truncatingIfNeeded: v).littleEndian) { out.append(contentsOf: $0) }
            }
            bytes = out
        }
        program.tensors[value] = ArenaTensor(name: value, byteSize: bytes.count, constant: bytes)
    }

    /// Registers `value` as a view of `source` (resolved to its root).
    func registerView(_ value: String, of source: String, for n: LoweringNode) throws {
        guard let sourceTensor = program.tensors[source] else {
            throw error(n, "views '\(source)', which no earlier node computes")
        }
        let root = sourceTensor.viewOf ?? source
        program.tensors[value] = ArenaTensor(name: value, byteSize: sourceTensor.byteSize, viewOf: root)
    }

    /// A fresh value name for an intermediate a rule introduces (e.g. Gemm's product before a C add).
    func temporary(_ base: String, shape: [Int]) -> String {
        var name = base
        var i = 1
        while values[name] != nil || initializers[name] != nil || program.tensors[name] != nil {
            name = "\(base)#\(i)"
            i += 1
        }
        values[name] = ValueInfo(name: name, dtype: .float32, shape: shape)
        return name
    }

    // MARK: - Kernels, images, steps

    /// The index of the kernel for `request`, compiling it on first use.
    func kernel(_ request: KernelRequest) throws -> Int {
        var defines = request.defines
        if request.family.readsWeightImage {
            defines["WEIGHT_FORMAT"] = request.family.weightFormat(precision).glslLayout
        }
        let definePart = defines.keys.sorted().map { "\($0)=\(defines[$0]!)" }.joined(separator: ",")
        let specPart = request.specConstants.map(String.init).joined(separator: ",")
        let name = "\(request.family.stem)<\(definePart)>[\(specPart)]"
        if let index = kernelIndex[name] {
            return index
        }
        let spirv = try compiler.compile(request.family.file, defines: defines)
        program.kernels.append(KernelSpec(name: name, spirv: spirv, bindings: request.family.bindings,
                                          pushConstantSize: request.family.pushConstantSize,
                                          workgroupSize: request.workgroupSize, specConstants: request.specConstants,
                                          sharedMemoryBytes: request.sharedMemoryBytes, features: request.features))
        kernelIndex[name] = program.kernels.count - 1
        return program.kernels.count - 1
    }

    /// Drops the kernels no step dispatches any more (after a pass merged steps), keeping the others' order.
    func pruneUnusedKernels() {
        let used = Set(program.steps.map(\.kernel))
        guard used.count < program.kernels.count else { return }
        var newIndex: [Int: Int] = [:]
        var kept: [KernelSpec] = []
        for (i, kernel) in program.kernels.enumerated() where used.contains(i) {
            newIndex[i] = kept.count
            kept.append(kernel)
        }
        program.kernels = kept
        for k in program.steps.indices { program.steps[k].kernel = newIndex[program.steps[k].kernel]! }
        kernelIndex = kernelIndex.compactMapValues { newIndex[$0] }
    }

    /// Adds a weight image holding `values` (in the kernel's read order) in `format` (default: the precision's,
    /// 4 values per texel); returns its binding.
    func image(named base: String, values: [Float], format: ImageFormat? = nil) -> LoweredBinding {
        var name = base
        var i = 1
        while imageNames.contains(name) {
            name = "\(base)#\(i)"
            i += 1
        }
        imageNames.insert(name)
        var image = ImageLayout.image(name: name, values: values, format: format ?? precision.imageFormat)
        if let imageSink {
            imageSink(image)
            image.texels = []
            releaseSourcePages()
        }
        program.images.append(image)
        return .image(program.images.count - 1)
    }

    /// Bytes of weight image `binding` (for bytesRead).
    func imageBytes(_ binding: LoweredBinding) -> Int {
        guard case .image(let i) = binding else { return 0 }
        return program.images[i].byteSize
    }

    func emit(_ n: LoweringNode, kernel: Int, groups: [UInt32], bindings: [LoweredBinding], push: PushConstants,
              flops: Double, bytes: Double, work: StepWork = .plain) throws {
        let spec = program.kernels[kernel]
        guard push.count == spec.pushConstantSize, bindings.count == spec.bindings.count else {
            throw error(n, "internal: kernel \(spec.name) expects \(spec.pushConstantSize) push-constant bytes and "
                        + "\(spec.bindings.count) bindings, got \(push.count) and \(bindings.count)")
        }
        guard groups.count == 3, groups.allSatisfy({ $0 >= 1 && $0 <= UInt32(Lowering.maxGroupsPerAxis) }) else {
            throw error(n, "the dispatch grid \(groups) exceeds 65535 workgroups per axis")
        }
        // Vulkan has no empty buffer ranges; constant folding removes every empty tensor it can (Graph.foldConstants).
        for case .tensor(let name) in bindings where program.tensors[name]?.byteSize == 0 {
            throw error(n, "zero-size tensor '\(name)' (a dimension is 0) is not supported as an operand of this "
                        + "operator's kernel")
        }
        var step = LoweredStep(kernel: kernel, groups: groups, bindings: bindings, pushConstants: push.bytes,
                               label: n.label, flops: flops, bytesRead: bytes, predicate: stepPredicate)
        step.work = work
        program.steps.append(step)
    }

    /// groups1D or a CompileError naming the node.
    func groups1D(_ n: LoweringNode, items: Int, perGroup: Int) throws -> [UInt32] {
        guard let groups = Lowering.groups1D(items: items, perGroup: perGroup) else {
            throw error(n, "\(items) work items exceed the dispatch grid")
        }
        return groups
    }

    // MARK: - I/O

    private func ioBinding(_ info: ValueInfo) throws -> IOBinding {
        let dtype = initializers[info.name]?.dtype ?? values[info.name]?.dtype ?? info.dtype
        guard let elementType = dtype.elementType else {
            throw CompileError(file: file, "model input/output '\(info.name)' has dtype \(dtype), which the runtime cannot exchange")
        }
        guard let shape = initializers[info.name]?.shape ?? values[info.name]?.staticShape ?? info.staticShape else {
            throw CompileError(file: file, "the shape of model input/output '\(info.name)' is unknown")
        }
        return IOBinding(name: info.name, elementType: elementType, shape: shape.map(Int64.init), tensor: 0)
    }
}
