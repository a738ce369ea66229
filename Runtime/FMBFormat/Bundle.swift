// The in-memory form of a `.fmb` bundle. FORMAT.md beside this file is the byte-level spec;
// `BundleWriter` produces the bytes, `BundleReader` parses them and `BundleValidator` checks them.
//
// Everything a runtime needs is decided here ahead of time: kernels, their dispatches, where every
// activation lives in the arena, how every weight is laid out in its image, how weights are cut into
// chunks and when each chunk is loaded. The runtime never re-lays-out a weight.

/// A whole compiled model, less its payload bytes. Chunk payloads and resident constants live in the
/// data section; `DataRange` offsets are relative to its start. The writer takes the payload as a separate
/// blob and the reader hands back a view of the mapped file, so payloads are never copied on load.
public struct FMBundle: Equatable, Sendable {
    public var meta: Meta
    /// SPIR-V modules, deduplicated: several kernels may share one module with other spec constants.
    public var spirv: [[UInt32]]
    public var kernels: [Kernel]
    /// Ordered steps; the runtime executes them in this order.
    public var program: [Step]
    /// Activations, inputs, outputs and small resident constants, all in the one arena buffer.
    public var tensors: [Tensor]
    public var images: [Image]
    public var chunks: [Chunk]
    public var schedule: Schedule
    /// Where every weight image lives on the device and which stay resident (format 1.2, `placement`); nil in
    /// older bundles, which the runtime refuses (it executes the plan as written).
    public var placement: Placement?
    /// Conditions kernels check on the device while they run, reported after the run (format 1.3, `checks`),
    /// e.g. a Gather's indices in range. Empty in older bundles.
    public var checks: [RuntimeCheck]

    public init(meta: Meta, spirv: [[UInt32]], kernels: [Kernel], program: [Step], tensors: [Tensor],
                images: [Image], chunks: [Chunk], schedule: Schedule, placement: Placement? = nil,
                checks: [RuntimeCheck] = []) {
        self.checks = checks
        self.meta = meta
        self.spirv = spirv
        self.kernels = kernels
        self.program = program
        self.tensors = tensors
        self.images = images
        self.chunks = chunks
        self.schedule = schedule
        self.placement = placement
    }
}

// MARK: - Meta

public enum ElementType: UInt8, Sendable, CaseIterable {
    case float32 = 1
    case float16 = 2
    case int32 = 3
    case int64 = 4
    case bool = 5  // one byte per element

    public var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float16: 2
        case .int64: 8
        case .bool: 1
        }
    }
}

/// A model input or output: its user-facing signature and the arena tensor that holds it.
/// The arena copy is always fp32 for floating types and int32 for integer types; the runtime
/// converts at the boundary (see FORMAT.md, "I/O conversion").
public struct IOBinding: Equatable, Sendable {
    public var name: String
    public var elementType: ElementType
    public var shape: [Int64]
    public var tensor: UInt32

    public init(name: String, elementType: ElementType, shape: [Int64], tensor: UInt32) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
        self.tensor = tensor
    }

    public var elementCount: Int { shape.reduce(1) { $0 * Int($1) } }
}

/// What the device must offer for this bundle to run; checked before any Vulkan object is made.
public struct DeviceRequirements: Equatable, Sendable {
    public var pushConstantBytes: UInt32
    public var storageBufferRange: UInt64
    public var imageDimension2D: UInt32
    public var imageArrayLayers: UInt32
    public var workgroupInvocations: UInt32
    public var sharedMemoryBytes: UInt32
    /// Optional device features some kernel needs (format 1.3; empty in older files).
    public var features: DeviceFeatures

    public init(pushConstantBytes: UInt32 = 0, storageBufferRange: UInt64 = 0, imageDimension2D: UInt32 = 0,
                imageArrayLayers: UInt32 = 0, workgroupInvocations: UInt32 = 0, sharedMemoryBytes: UInt32 = 0,
                features: DeviceFeatures = []) {
        self.pushConstantBytes = pushConstantBytes
        self.storageBufferRange = storageBufferRange
        self.imageDimension2D = imageDimension2D
        self.imageArrayLayers = imageArrayLayers
        self.workgroupInvocations = workgroupInvocations
        self.sharedMemoryBytes = sharedMemoryBytes
        self.features = features
    }
}

/// Optional device features a bundle's kernels use beyond what every FlashMem device has (bits of
/// `meta.requirements.features`, FORMAT.md). A runtime enables them at device creation where offered and refuses
/// a bundle that needs one its device lacks.
public struct DeviceFeatures: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Tensor cores through VK_NV_cooperative_matrix: its `cooperativeMatrix` feature with fp16 × fp16 → fp32
    /// 16 × 16 × 16 fragments at subgroup scope, subgroups of 32, and the Vulkan 1.2 features the SPIR-V of such
    /// kernels also declares (`vulkanMemoryModel`, `shaderFloat16`). Kernels: gemm_cm.comp.
    public static let cooperativeMatrixNV = DeviceFeatures(rawValue: 1 << 0)

    /// Every bit this reader knows, with its name.
    public static let named: [(DeviceFeatures, String)] = [(.cooperativeMatrixNV, "cooperativeMatrixNV")]
    public static let known = DeviceFeatures(named.map(\.0))

    /// SPIR-V capabilities that imply a feature (the validator checks that the bundle declares it).
    static let implyingCapabilities: [(capability: UInt32, name: String, feature: DeviceFeatures)] = [
        (5357, "CooperativeMatrixNV", .cooperativeMatrixNV),
    ]

    /// "cooperativeMatrixNV", names joined by ", ", "none" when empty, unknown bits in hex.
    public var description: String {
        var names = Self.named.filter { contains($0.0) }.map(\.1)
        let unknown = rawValue & ~Self.known.rawValue
        if unknown != 0 { names.append("unknown 0x" + String(unknown, radix: 16)) }
        return names.isEmpty ? "none" : names.joined(separator: ", ")
    }
}

public struct Meta: Equatable, Sendable {
    public var modelName: String
    /// Who wrote the bundle, e.g. "fmc 0.1.0".
    public var producer: String
    public var inputs: [IOBinding]
    public var outputs: [IOBinding]
    public var requirements: DeviceRequirements
    /// Total arena bytes (activations + resident constants); the runtime makes one buffer this size.
    public var arenaSize: UInt64

    public init(modelName: String, producer: String, inputs: [IOBinding], outputs: [IOBinding],
                requirements: DeviceRequirements, arenaSize: UInt64) {
        self.modelName = modelName
        self.producer = producer
        self.inputs = inputs
        self.outputs = outputs
        self.requirements = requirements
        self.arenaSize = arenaSize
    }
}

// MARK: - Kernels and program

public enum BindingKind: UInt8, Sendable {
    /// A range of the arena (a `Tensor`), `layout(std430) buffer` in GLSL.
    case storageBuffer = 1
    /// A weight image, `layout(rgba32f|rgba16f) readonly uniform image2DArray` in GLSL (`layout(rgba32ui)
    /// readonly uniform uimage2DArray` for `ImageFormat.half8`).
    case storageImage = 2
}

public struct Kernel: Equatable, Sendable {
    public var name: String
    /// Index into `FMBundle.spirv`; the entry point is always "main".
    public var spirv: UInt32
    /// Binding `i` of descriptor set 0 has kind `bindings[i]`.
    public var bindings: [BindingKind]
    public var pushConstantSize: UInt32
    public var workgroupSize: [UInt32]  // x, y, z
    /// Specialization constant `i` (constant_id = i) has the 32-bit value `specConstants[i]`.
    public var specConstants: [UInt32]

    public init(name: String, spirv: UInt32, bindings: [BindingKind], pushConstantSize: UInt32,
                workgroupSize: [UInt32], specConstants: [UInt32]) {
        self.name = name
        self.spirv = spirv
        self.bindings = bindings
        self.pushConstantSize = pushConstantSize
        self.workgroupSize = workgroupSize
        self.specConstants = specConstants
    }
}

public enum BindingRef: Equatable, Sendable {
    case tensor(UInt32)
    case image(UInt32)
}

/// One dispatch. The runtime puts a compute→compute memory barrier between consecutive steps.
public struct Step: Equatable, Sendable {
    public var kernel: UInt32
    public var groups: [UInt32]  // x, y, z
    public var bindings: [BindingRef]
    public var pushConstants: [UInt8]
    /// The ONNX node(s) this step computes, for profiles and error messages.
    public var label: String
    /// Set for the steps of an If branch whose condition is only known at run time: the dispatch runs only
    /// when the condition holds (stored in the `predicates` section, format 1.1).
    public var predicate: StepPredicate?

    public init(kernel: UInt32, groups: [UInt32], bindings: [BindingRef], pushConstants: [UInt8], label: String,
                predicate: StepPredicate? = nil) {
        self.kernel = kernel
        self.groups = groups
        self.bindings = bindings
        self.pushConstants = pushConstants
        self.label = label
        self.predicate = predicate
    }
}

/// Which value of a predicate's condition lets its step run.
public enum PredicateSense: UInt8, Sendable {
    /// Run when the condition's 32-bit value is not 0 (an If's then_branch).
    case nonZero = 1
    /// Run when it is 0 (an If's else_branch).
    case zero = 2
}

/// A condition a kernel checks on the device (format 1.3, `checks` section). The runtime zeroes the first 8 bytes
/// of `tensor` before every run and reads them back after it; a kernel that finds the condition broken writes a
/// nonzero word 0 and the offending value (int32) into word 1. The run then fails with an error naming `node`.
public struct RuntimeCheck: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// Indices of a Gather (or an embedding lookup) lie in [-bound, bound - 1], as ONNX requires.
        case indexInRange = 1
    }

    public var kind: Kind
    /// Index into `FMBundle.tensors`: the flag words (at least 8 bytes).
    public var tensor: UInt32
    /// The model node whose kernel checks, as messages name it, e.g. "Gather 'embed'".
    public var node: String
    /// For `indexInRange`: the size of the indexed axis.
    public var bound: Int64

    public init(kind: Kind, tensor: UInt32, node: String, bound: Int64) {
        self.kind = kind
        self.tensor = tensor
        self.node = node
        self.bound = bound
    }
}

/// The run-time condition of a step: the first 32-bit word of an arena tensor (a bool or integer condition,
/// stored as int32 0/1 like every bool in the arena), read by the device when the step is reached
/// (VK_EXT_conditional_rendering), never by the host.
public struct StepPredicate: Equatable, Sendable {
    /// Index into `FMBundle.tensors`.
    public var tensor: UInt32
    public var sense: PredicateSense

    public init(tensor: UInt32, sense: PredicateSense) {
        self.tensor = tensor
        self.sense = sense
    }
}

extension FMBundle {
    /// Whether any step is predicated: such a bundle is format 1.1 with the `predicatedSteps` header flag, and
    /// needs VK_EXT_conditional_rendering.
    public var hasPredicatedSteps: Bool { program.contains { $0.predicate != nil } }
}

// MARK: - Memory

/// A range of the arena. Several tensors may share bytes when their lifetimes do not overlap, or when one
/// is a view of another (Reshape, Flatten, Identity).
public struct Tensor: Equatable, Sendable {
    public var name: String
    public var offset: UInt64
    public var size: UInt64
    /// For resident constants: the range of the data section copied into the arena once per session.
    public var constant: DataRange?

    public init(name: String, offset: UInt64, size: UInt64, constant: DataRange? = nil) {
        self.name = name
        self.offset = offset
        self.size = size
        self.constant = constant
    }
}

public struct DataRange: Equatable, Sendable {
    public var offset: UInt64
    public var size: UInt64

    public init(offset: UInt64, size: UInt64) {
        self.offset = offset
        self.size = size
    }
}

public enum ImageFormat: UInt8, Sendable, CaseIterable {
    /// 4 floats per texel.
    case rgba32f = 1
    /// 4 IEEE halves per texel.
    case rgba16f = 2
    /// 8 IEEE halves per texel, stored as rgba32ui (format 1.5): the tensor-core kernels read a texel's raw bits
    /// as 8 fp16 values with no conversion (`Shaders/gemm_cm.comp`).
    case half8 = 3

    public var texelBytes: Int {
        switch self {
        case .rgba32f, .half8: 16
        case .rgba16f: 8
        }
    }

    /// Weight values per texel.
    public var valuesPerTexel: Int { self == .half8 ? 8 : 4 }
}

/// A weight image: a 2D array image whose texels hold one weight, already in the order its kernel reads
/// them. Texel `t` of the weight is at x = t % width, y = (t / width) % height, layer = t / (width * height).
public struct Image: Equatable, Sendable {
    public var name: String
    public var format: ImageFormat
    public var width: UInt32
    public var height: UInt32
    public var layers: UInt32

    public init(name: String, format: ImageFormat, width: UInt32, height: UInt32, layers: UInt32) {
        self.name = name
        self.format = format
        self.width = width
        self.height = height
        self.layers = layers
    }

    public var byteSize: UInt64 { UInt64(width) * UInt64(height) * UInt64(layers) * UInt64(format.texelBytes) }
}

public enum Codec: UInt8, Sendable {
    case none = 0
    case zstd = 1
}

/// A piece of one weight image: `rows` full rows starting at row `y` of one layer.
public struct Chunk: Equatable, Sendable {
    public var image: UInt32
    public var layer: UInt32
    public var y: UInt32
    public var rows: UInt32
    /// Stored payload inside the data section; its offset is a multiple of 4096 in the file.
    public var payload: DataRange
    /// Bytes after decoding: rows * width * texelBytes.
    public var rawSize: UInt64
    public var codec: Codec
    /// `Checksum.fm64` of the decoded bytes.
    public var checksum: UInt64

    public init(image: UInt32, layer: UInt32, y: UInt32, rows: UInt32, payload: DataRange, rawSize: UInt64,
                codec: Codec, checksum: UInt64) {
        self.image = image
        self.layer = layer
        self.y = y
        self.rows = rows
        self.payload = payload
        self.rawSize = rawSize
        self.codec = codec
        self.checksum = checksum
    }
}

// MARK: - Schedule

/// When every weight is loaded and released, and what the compiler assumed when it decided so.
public struct Schedule: Equatable, Sendable {
    /// Chunks in the order the streamer issues them (indices into `FMBundle.chunks`).
    public var order: [UInt32]
    /// Per chunk: the copy may start once steps 0..<issueStep have completed (0: at the start).
    public var issueStep: [UInt32]
    /// Per image: the first and last steps that read it. Its memory may be reused after `lastUse`.
    public var firstUse: [UInt32]
    public var lastUse: [UInt32]
    /// The memory budget the schedule was solved for (0: unbounded), in bytes.
    public var budgetBytes: UInt64
    /// The cost model: host→device bandwidth in bytes/s and the estimated time of each step in seconds.
    public var bandwidth: Double
    public var stepSeconds: [Double]
    /// The predicted makespan of a streamed run and the lower bound max(Σ t_k, Σ s_c / B), in seconds.
    public var predictedSeconds: Double
    public var lowerBoundSeconds: Double
    /// Per image (format 1.4, `waits` section; nil: `firstUse`): the step whose compute submission first waits
    /// for all of the image's chunks to land. Between its chunks' issue steps and `firstUse`: the plan moves
    /// waits earlier so several images land behind one submission boundary (`waitStep(image:)`).
    public var waitStep: [UInt32]?

    public init(order: [UInt32], issueStep: [UInt32], firstUse: [UInt32], lastUse: [UInt32], budgetBytes: UInt64,
                bandwidth: Double, stepSeconds: [Double], predictedSeconds: Double, lowerBoundSeconds: Double,
                waitStep: [UInt32]? = nil) {
        self.waitStep = waitStep
        self.order = order
        self.issueStep = issueStep
        self.firstUse = firstUse
        self.lastUse = lastUse
        self.budgetBytes = budgetBytes
        self.bandwidth = bandwidth
        self.stepSeconds = stepSeconds
        self.predictedSeconds = predictedSeconds
        self.lowerBoundSeconds = lowerBoundSeconds
    }

    /// The step before which a run waits for every chunk of image `i`: `waitStep[i]`, or its first use.
    public func waitStep(image i: Int) -> Int {
        Int(waitStep?[i] ?? firstUse[i])
    }
}

// MARK: - Placement

/// The device half of the load plan (format 1.2): one budget covers the arena and one *weight space*, an address
/// range that the runtime backs with one allocation per segment. Every image has a slot in it. Resident slots
/// are loaded once (by the first run) and kept; streamed slots are loaded by every run and may share bytes
/// with other streamed slots whose windows (`FMBundle.imageWindows`) do not overlap. The `schedule` section
/// keeps the time half (issue order and steps, uses, the cost model), so each fact has one home.
public struct Placement: Equatable, Sendable {
    /// Which planner produced the plan (reported by `fmc inspect`).
    public enum Method: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        case heuristic = 1
        /// A MIP solved to optimality for the whole program.
        case exact = 2
        /// A MIP solved per window of steps.
        case windowedExact = 3
        /// Everything resident, nothing streamed (`--preload`-like plans and unbounded budgets).
        case allResident = 4

        public var description: String {
            switch self {
            case .heuristic: "heuristic"
            case .exact: "exact"
            case .windowedExact: "windowed exact"
            case .allResident: "all resident"
            }
        }
    }

    public struct Slot: Equatable, Sendable {
        /// Loaded once and kept across runs; otherwise streamed by every run.
        public var resident: Bool
        /// From the start of the weight space; a multiple of `slotAlignment`; never straddles a segment boundary.
        public var offset: UInt64
        /// Bytes reserved (≥ the image's `byteSize`; devices may pad images, the runtime checks).
        public var size: UInt64

        public init(resident: Bool, offset: UInt64, size: UInt64) {
            self.resident = resident
            self.offset = offset
            self.size = size
        }

        public var end: UInt64 { offset + size }
    }

    /// Bytes of the weight space: the highest slot end.
    public var weightSpaceBytes: UInt64
    /// No slot crosses a multiple of this; the runtime allocates one block per segment.
    public var segmentBytes: UInt64
    public var slotAlignment: UInt64
    public var method: Method
    /// One per image.
    public var slots: [Slot]

    public init(weightSpaceBytes: UInt64, segmentBytes: UInt64, slotAlignment: UInt64, method: Method, slots: [Slot]) {
        self.weightSpaceBytes = weightSpaceBytes
        self.segmentBytes = segmentBytes
        self.slotAlignment = slotAlignment
        self.method = method
        self.slots = slots
    }

    public var residentBytes: UInt64 { slots.filter(\.resident).reduce(0) { $0 + $1.size } }
}

extension FMBundle {
    /// Per image, the steps over which its slot is taken in a run: from the issue step of its earliest chunk
    /// (its copies may start once the steps before it completed) through its last use. The one definition of an
    /// image's lifetime that the validator, the inspector and the runtime use.
    public func imageWindows() -> [ClosedRange<Int>] {
        var start = schedule.firstUse.map { Int($0) }
        for (c, chunk) in chunks.enumerated() where Int(chunk.image) < start.count && c < schedule.issueStep.count {
            start[Int(chunk.image)] = min(start[Int(chunk.image)], Int(schedule.issueStep[c]))
        }
        return start.indices.map { i in
            let end = i < schedule.lastUse.count ? Int(schedule.lastUse[i]) : start[i]
            return start[i]...max(start[i], end)
        }
    }

    /// Bytes of weights a warm run copies: the chunks of streamed images (all of them without a placement).
    public var streamedBytes: UInt64 {
        chunks.reduce(0) { sum, chunk in
            let resident = placement.map { Int(chunk.image) < $0.slots.count && $0.slots[Int(chunk.image)].resident } ?? false
            return resident ? sum : sum + chunk.rawSize
        }
    }

    /// The planned device bytes: arena + weight space (nil without a placement).
    public var plannedDeviceBytes: UInt64? { placement.map { meta.arenaSize + $0.weightSpaceBytes } }
}
