// What lowering produces: kernels and dispatches over named tensors and weight images, before memory
// planning (arena offsets), chunking and scheduling turn it into an `FMBundle`.

import FMBFormat
import Foundation

/// A compiled kernel variant: one SPIR-V module plus the interface the runtime needs.
public struct KernelSpec: Sendable, Equatable {
    public var name: String
    public var spirv: [UInt32]
    public var bindings: [BindingKind]
    public var pushConstantSize: Int
    public var workgroupSize: [UInt32]
    public var specConstants: [UInt32]
    /// Shared memory the kernel declares, for the device requirements.
    public var sharedMemoryBytes: Int
    /// Optional device features the SPIR-V needs (e.g. cooperative matrices), for the device requirements.
    public var features: DeviceFeatures

    /// Whether the kernel multiplies on the cooperative-matrix units (what its estimated time and the compile
    /// report count by).
    public var usesCooperativeMatrix: Bool { features.contains(.cooperativeMatrixNV) }

    public init(name: String, spirv: [UInt32], bindings: [BindingKind], pushConstantSize: Int,
                workgroupSize: [UInt32], specConstants: [UInt32] = [], sharedMemoryBytes: Int = 0,
                features: DeviceFeatures = []) {
        self.name = name
        self.spirv = spirv
        self.bindings = bindings
        self.pushConstantSize = pushConstantSize
        self.workgroupSize = workgroupSize
        self.specConstants = specConstants
        self.sharedMemoryBytes = sharedMemoryBytes
        self.features = features
    }
}

public enum LoweredBinding: Sendable, Equatable {
    /// An arena tensor, by graph value name.
    case tensor(String)
    /// A weight image, by index into `LoweredProgram.images`.
    case image(Int)
}

public struct LoweredStep: Sendable {
    public var kernel: Int
    public var groups: [UInt32]
    public var bindings: [LoweredBinding]
    public var pushConstants: [UInt8]
    /// The ONNX node name(s) this step computes.
    public var label: String
    /// Estimated work, for the cost model.
    public var flops: Double
    public var bytesRead: Double
    /// What else bounds the step's time (`CostModel.seconds`).
    public var work: StepWork = .plain
    /// Set for the steps of an If branch decided at run time (Lowering+ControlFlow.swift).
    public var predicate: LoweredPredicate?

    public init(kernel: Int, groups: [UInt32], bindings: [LoweredBinding], pushConstants: [UInt8], label: String,
                flops: Double = 0, bytesRead: Double = 0, predicate: LoweredPredicate? = nil) {
        self.kernel = kernel
        self.groups = groups
        self.bindings = bindings
        self.pushConstants = pushConstants
        self.label = label
        self.flops = flops
        self.bytesRead = bytesRead
        self.predicate = predicate
    }

    /// The arena tensors the step uses: its tensor bindings and, for a predicated step, its condition (read when
    /// the step is reached, like a binding).
    public var tensors: [String] {
        bindings.compactMap { if case .tensor(let name) = $0 { name } else { nil } } + (predicate.map { [$0.tensor] } ?? [])
    }
}

/// The kind of work a step does, where the cost model estimates it differently from its FLOPs and bytes alone.
public enum StepWork: Sendable, Equatable {
    case plain
    /// A fused attention (attention.comp).
    case attention
    /// A product on the cooperative-matrix units (gemm_cm.comp): each workgroup walks `kPerWorkgroup` values of K in
    /// a chain of dependent slabs; `slices` > 1 writes split-K partial sums (reduced by a step of their own).
    case cooperativeMatrix(kPerWorkgroup: Int, slices: Int)
}

/// A step's run-time condition: the arena tensor (by value name) holding an If's condition, and which value
/// lets the step run. The tensor must stay live until the step (ArenaPlanner counts it as read there).
public struct LoweredPredicate: Sendable, Equatable {
    public var tensor: String
    public var sense: PredicateSense

    public init(tensor: String, sense: PredicateSense) {
        self.tensor = tensor
        self.sense = sense
    }
}

/// A weight already transformed into the texel order its kernel reads: `texels` holds
/// width * height * layers texels of `format`, zero-padded past the weight's end (or nothing once an image sink
/// has written it out: `Lowering.lower(…imageSink:)`).
public struct WeightImage: Sendable {
    public var name: String
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    public var layers: Int
    public var texels: [UInt8]

    public init(name: String, format: ImageFormat, width: Int, height: Int, layers: Int, texels: [UInt8]) {
        self.name = name
        self.format = format
        self.width = width
        self.height = height
        self.layers = layers
        self.texels = texels
    }

    /// Bytes of the whole extent (what `texels` holds before an image sink takes it).
    public var byteSize: Int { width * height * layers * format.texelBytes }
}

/// An arena tensor: a graph value that kernels read or write, a view of another, or a small constant.
public struct ArenaTensor: Sendable {
    public var name: String
    public var byteSize: Int
    /// Set for views (Reshape, Flatten, Identity…): this tensor is the same bytes as `viewOf`.
    public var viewOf: String?
    /// Set for resident constants: bytes uploaded into the arena once per session.
    public var constant: [UInt8]?

    public init(name: String, byteSize: Int, viewOf: String? = nil, constant: [UInt8]? = nil) {
        self.name = name
        self.byteSize = byteSize
        self.viewOf = viewOf
        self.constant = constant
    }
}

public struct LoweredProgram: Sendable {
    public var kernels: [KernelSpec] = []
    public var steps: [LoweredStep] = []
    /// Every arena tensor by name, including graph inputs and outputs.
    public var tensors: [String: ArenaTensor] = [:]
    public var images: [WeightImage] = []
    /// Graph inputs and outputs in graph order, with the arena tensor that holds each (same name).
    public var inputs: [IOBinding] = []
    public var outputs: [IOBinding] = []
    /// Weights the lowering cut into several images because one would exceed `maxImageBytes`, in node order.
    public var splits: [WeightSplit] = []
    /// Conditions kernels check on the device (FMBundle.checks): each names its arena flag tensor (8 bytes).
    public var checks: [LoweredCheck] = []

    public init() {}
}

/// A run-time check before arena placement (`RuntimeCheck` with the flag tensor by name).
public struct LoweredCheck: Sendable, Equatable {
    public var kind: RuntimeCheck.Kind
    public var tensor: String
    public var node: String
    public var bound: Int
}

/// A weight cut into pieces (kernel rewriting under `maxImageBytes`): its images are named
/// "<weight>[p/P]" (p from 1) and each is read by its own step of `node`.
public struct WeightSplit: Sendable, Equatable {
    /// What the pieces are ranges of.
    public enum Axis: String, Sendable {
        /// Output columns of a Gemm / MatMul B' [K, N] (whole texel blocks of 4 columns).
        case columns
        /// Rows of a Gather table along its gathered axis.
        case rows
        /// Output channels of a Conv weight (whole texel blocks of 4 channels).
        case outputChannels = "output channels"
        /// Whole groups of a grouped (depthwise…) Conv weight.
        case groups
    }

    /// The step label of the node whose weight was cut.
    public var node: String
    public var weight: String
    /// Bytes the weight's single image would have taken (its padded extent).
    public var originalBytes: Int
    public var pieces: Int
    public var axis: Axis
    /// Bytes of the largest piece's image, ≤ the limit.
    public var largestPieceBytes: Int
    /// The limit it was cut for.
    public var maxImageBytes: Int

    public init(node: String, weight: String, originalBytes: Int, pieces: Int, axis: Axis, largestPieceBytes: Int,
                maxImageBytes: Int) {
        self.node = node
        self.weight = weight
        self.originalBytes = originalBytes
        self.pieces = pieces
        self.axis = axis
        self.largestPieceBytes = largestPieceBytes
        self.maxImageBytes = maxImageBytes
    }

    /// One line for reports: "lm_head: weight 'W' (257.0 MiB) cut into 3 pieces along columns (≤ 96.0 MiB each)".
    public var summary: String {
        func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
        return "\(node): weight '\(weight)' (\(mib(originalBytes))) cut into \(pieces) pieces along \(axis.rawValue) "
            + "(largest \(mib(largestPieceBytes)), limit \(mib(maxImageBytes)))"
    }
}
