// The meaning pass (FORMAT.md "Validation", pass 2): what the decoded tables say must be consistent.
// Runs on a bundle whose structure passed; still never indexes out of range or overflows on bad values.

extension BundleValidator {
    /// The largest raw size of one chunk (2 GiB): a chunk is staged whole, and this bounds what a reader
    /// allocates for one.
    public static let maxChunkRawSize: UInt64 = 1 << 31
    /// SPIR-V's magic number, the first word of every module.
    public static let spirvMagic: UInt32 = 0x0723_0203
    /// Arena tensors start at multiples of this (the largest minStorageBufferOffsetAlignment we accept).
    public static let tensorAlignment: UInt64 = 256
    /// The most bytes the arena or the weight space may plan for (1 PiB, far beyond any device): readers add
    /// the arena, the weight space and image sizes together, and under this bound those sums cannot overflow.
    public static let maxDeviceBytes: UInt64 = 1 << 50
    /// The largest width, height or layer count of a weight image (Vulkan devices allow 16384–32768 and 2048
    /// layers): an image's byte size then stays below 2^52.
    public static let maxImageExtent: UInt32 = 1 << 16

    /// The meaning pass: ordinals in range, bindings match kernels, sizes consistent, chunks tile their
    /// images, the schedule is complete and cannot deadlock, requirements cover what the tables need.
    public static func checkMeaning(_ b: FMBundle) -> [FormatIssue] {
        var m = MeaningCheck(b)
        m.checkMeta()
        m.checkKernels()
        m.checkProgram()
        m.checkTensorsAndImages()
        m.checkChunks()
        m.checkSchedule()
        m.checkPlacement()
        m.checkRuntimeChecks()
        m.checkRequirements()
        return m.issues
    }
}

/// The state of one meaning pass: the bundle and the issues found so far.
private struct MeaningCheck {
    let b: FMBundle
    var issues: [FormatIssue] = []

    init(_ bundle: FMBundle) { b = bundle }

    mutating func fail(_ path: String, _ message: String) {
        issues.append(FormatIssue(.meaning, path, message))
    }

    func kernelName(_ k: Int) -> String { "kernels[\(k)] ('\(b.kernels[k].name)')" }

    /// Checks an ordinal; true when it is in range.
    mutating func inRange(_ index: UInt32, _ count: Int, _ what: String, _ path: String) -> Bool {
        if Int(index) < count { return true }
        fail(path, "\(what) \(index) out of range (\(count) \(what)s)")
        return false
    }

    // MARK: Meta

    mutating func checkMeta() {
        for (list, ios) in [("meta.inputs", b.meta.inputs), ("meta.outputs", b.meta.outputs)] {
            // The runtime finds inputs by name; outputs come back in order, and an ONNX graph may list one output
            // twice: a repeated output name must be the same output (tensor, element type, shape).
            var names: [String: Int] = [:]
            for (i, io) in ios.enumerated() {
                let path = "\(list)[\(i)]"
                if io.name.isEmpty { fail("\(path).name", "empty name") }
                if let other = names[io.name] {
                    if list == "meta.inputs" || ios[other] != io {
                        fail("\(path).name", "duplicate name '\(io.name)' (also \(list)[\(other)])")
                    }
                } else {
                    names[io.name] = i
                }
                var count: UInt64? = 1
                for (d, dim) in io.shape.enumerated() {
                    if dim < 0 {
                        fail("\(path).shape[\(d)]", "dimension \(dim) is not static (must be ≥ 0)")
                        count = nil
                    } else if let c = count {
                        count = mul(c, UInt64(dim))
                    }
                }
                guard inRange(io.tensor, b.tensors.count, "tensor", "\(path).tensor") else { continue }
                guard let elements = count else { continue }
                // The arena holds 4 bytes per element whatever the element type (FORMAT.md "I/O conversion").
                let needed = mul(elements, 4)
                let tensor = b.tensors[Int(io.tensor)]
                if needed.map({ $0 > tensor.size }) ?? true {
                    fail("\(path).tensor", "tensor \(io.tensor) ('\(tensor.name)') has \(tensor.size) bytes, "
                         + "shape \(io.shape) needs \(needed.map { "\($0)" } ?? "more than 2^64") "
                         + "(4 bytes per element in the arena)")
                }
            }
        }
    }

    // MARK: Kernels and program

    mutating func checkKernels() {
        for (m, module) in b.spirv.enumerated() {
            if module.count < 5 {
                fail("spirv[\(m)]", "\(module.count) words: too short for a SPIR-V module (header is 5 words)")
            } else if module[0] != BundleValidator.spirvMagic {
                fail("spirv[\(m)]", "not SPIR-V: first word 0x\(hex(UInt64(module[0]), digits: 8)), expected 0x07230203")
            }
        }
        for (k, kernel) in b.kernels.enumerated() {
            let path = "kernels[\(k)]"
            _ = inRange(kernel.spirv, b.spirv.count, "spirv module", "\(path).spirv")
            if kernel.workgroupSize.count != 3 {
                fail("\(path).workgroupSize", "\(kernel.workgroupSize.count) entries, expected 3 (x, y, z)")
            } else if kernel.workgroupSize.contains(0) {
                fail("\(path).workgroupSize", "\(kernel.workgroupSize) has a zero dimension")
            }
            if kernel.pushConstantSize % 4 != 0 {
                fail("\(path).pushConstantSize", "\(kernel.pushConstantSize) is not a multiple of 4 (Vulkan requires it)")
            }
        }
    }

    mutating func checkProgram() {
        for (s, step) in b.program.enumerated() {
            let path = "program[\(s)]"
            if step.groups.count != 3 {
                fail("\(path).groups", "\(step.groups.count) entries, expected 3 (x, y, z)")
            } else if step.groups.contains(0) {
                fail("\(path).groups", "\(step.groups) has a zero group count")
            }
            if let predicate = step.predicate { checkPredicate(predicate, at: path) }
            guard inRange(step.kernel, b.kernels.count, "kernel", "\(path).kernel") else { continue }
            let k = Int(step.kernel)
            let kernel = b.kernels[k]
            if step.pushConstants.count != Int(kernel.pushConstantSize) {
                fail("\(path).pushConstants", "\(step.pushConstants.count) bytes, \(kernelName(k)) declares "
                     + "\(kernel.pushConstantSize)")
            }
            if step.bindings.count != kernel.bindings.count {
                fail("\(path).bindings", "\(step.bindings.count) bindings, \(kernelName(k)) declares "
                     + "\(kernel.bindings.count)")
            }
            for (i, binding) in step.bindings.enumerated() {
                let bpath = "\(path).bindings[\(i)]"
                switch binding {
                case .tensor(let t):
                    if i < kernel.bindings.count, kernel.bindings[i] != .storageBuffer {
                        fail(bpath, "binds a tensor, but binding \(i) of \(kernelName(k)) is a storage image")
                    }
                    if inRange(t, b.tensors.count, "tensor", bpath), b.tensors[Int(t)].size == 0 {
                        fail(bpath, "tensor \(t) ('\(b.tensors[Int(t)].name)') is empty; a storage buffer range "
                             + "must not be")
                    }
                case .image(let img):
                    if i < kernel.bindings.count, kernel.bindings[i] != .storageImage {
                        fail(bpath, "binds an image, but binding \(i) of \(kernelName(k)) is a storage buffer")
                    }
                    _ = inRange(img, b.images.count, "image", bpath)
                }
            }
        }
    }

    /// The condition is a whole 32-bit word of a tensor. (A step may bind its condition: a branch may read it.)
    mutating func checkPredicate(_ predicate: StepPredicate, at path: String) {
        let ppath = "\(path).predicate.tensor"
        guard inRange(predicate.tensor, b.tensors.count, "tensor", ppath) else { return }
        let tensor = b.tensors[Int(predicate.tensor)]
        if tensor.size < 4 {
            fail(ppath, "tensor \(predicate.tensor) ('\(tensor.name)') has \(tensor.size) bytes; a condition is a "
                 + "32-bit value")
        }
    }

    // MARK: Memory

    mutating func checkTensorsAndImages() {
        if b.meta.arenaSize > BundleValidator.maxDeviceBytes {
            fail("meta.arenaSize", "\(b.meta.arenaSize) bytes exceeds the \(BundleValidator.maxDeviceBytes)-byte limit")
        }
        for (t, tensor) in b.tensors.enumerated() {
            let path = "tensors[\(t)]"
            if tensor.offset % BundleValidator.tensorAlignment != 0 {
                fail("\(path).offset", "\(tensor.offset) is not a multiple of \(BundleValidator.tensorAlignment)")
            }
            if add(tensor.offset, tensor.size).map({ $0 > b.meta.arenaSize }) ?? true {
                fail(path, "range \(tensor.offset) + \(tensor.size) bytes is outside the arena "
                     + "(meta.arenaSize \(b.meta.arenaSize))")
            }
            if let constant = tensor.constant, constant.size > tensor.size {
                fail("\(path).constant.size", "\(constant.size) bytes do not fit the \(tensor.size)-byte tensor")
            }
        }
        for (i, image) in b.images.enumerated() {
            let extent = [image.width, image.height, image.layers]
            if extent.contains(0) {
                fail("images[\(i)]", "extent \(image.width)×\(image.height)×\(image.layers) has a zero dimension")
            } else if extent.contains(where: { $0 > BundleValidator.maxImageExtent }) {
                fail("images[\(i)]", "extent \(image.width)×\(image.height)×\(image.layers) exceeds "
                     + "\(BundleValidator.maxImageExtent) in a dimension")
            }
        }
    }

    // MARK: Chunks

    mutating func checkChunks() {
        /// (layer, y, rows, chunk) of every well-formed chunk, per image, for the tiling check.
        var regions = [[(layer: UInt32, y: UInt64, rows: UInt64, chunk: Int)]](repeating: [], count: b.images.count)
        for (c, chunk) in b.chunks.enumerated() {
            let path = "chunks[\(c)]"
            switch chunk.codec {
            case .none where chunk.payload.size != chunk.rawSize:
                fail("\(path).payload.size", "\(chunk.payload.size) bytes stored without a codec, but rawSize is "
                     + "\(chunk.rawSize)")
            case .zstd where chunk.payload.size == 0:
                fail("\(path).payload.size", "an empty zstd payload")
            default: break
            }
            if chunk.rawSize > BundleValidator.maxChunkRawSize {
                fail("\(path).rawSize", "\(chunk.rawSize) bytes exceeds the \(BundleValidator.maxChunkRawSize)-byte "
                     + "limit on one chunk")
            }
            guard inRange(chunk.image, b.images.count, "image", "\(path).image") else { continue }
            let image = b.images[Int(chunk.image)]
            var ok = true
            if chunk.layer >= image.layers {
                fail("\(path).layer", "\(chunk.layer) out of range: images[\(chunk.image)] has \(image.layers) layers")
                ok = false
            }
            if chunk.rows == 0 {
                fail("\(path).rows", "zero rows")
                ok = false
            }
            if UInt64(chunk.y) + UInt64(chunk.rows) > UInt64(image.height) {
                fail("\(path).rows", "rows \(chunk.y)..<\(UInt64(chunk.y) + UInt64(chunk.rows)) extend past the "
                     + "height \(image.height) of images[\(chunk.image)]")
                ok = false
            }
            let expected = mul(UInt64(chunk.rows) * UInt64(image.width), UInt64(image.format.texelBytes))
            if chunk.rawSize != expected {
                fail("\(path).rawSize", "\(chunk.rawSize), expected rows × width × texelBytes = \(chunk.rows) × "
                     + "\(image.width) × \(image.format.texelBytes) = \(expected.map { "\($0)" } ?? "more than 2^64")")
            }
            if ok { regions[Int(chunk.image)].append((chunk.layer, UInt64(chunk.y), UInt64(chunk.rows), c)) }
        }
        // Chunks must tile every image exactly: each row of each layer loaded once. O(chunks), whatever the
        // layer count says.
        for (i, image) in b.images.enumerated() where image.height > 0 && image.layers > 0 {
            let height = UInt64(image.height)
            let sorted = regions[i].sorted { ($0.layer, $0.y) < ($1.layer, $1.y) }
            var gaps = 0, firstGap: String? = nil
            var layer: UInt32 = 0, next: UInt64 = 0, previous = -1
            func gap(_ layer: UInt32, _ from: UInt64, _ to: UInt64, count: Int = 1) {
                gaps += count
                if firstGap == nil { firstGap = "layer \(layer) rows \(from)..<\(to)" }
            }
            /// Finishes `layer` and counts the layers before `target` that no chunk touches.
            func advance(to target: UInt32) {
                guard layer < target else { return }
                if next < height { gap(layer, next, height) }
                if target - layer > 1 { gap(layer + 1, 0, height, count: Int(target - layer - 1)) }
                layer = target
                next = 0
                previous = -1
            }
            for r in sorted {
                advance(to: r.layer)
                if r.y < next {
                    fail("chunks[\(r.chunk)]", "rows \(r.y)..<\(r.y + r.rows) of layer \(r.layer) overlap "
                         + "chunks[\(previous)] in images[\(i)]")
                } else if r.y > next {
                    gap(layer, next, r.y)
                }
                if r.y + r.rows > next {
                    next = r.y + r.rows
                    previous = r.chunk
                }
            }
            advance(to: image.layers)
            if let firstGap {
                fail("images[\(i)]", "'\(image.name)': \(gaps) row range(s) not loaded by any chunk, first: \(firstGap)")
            }
        }
    }

    // MARK: Schedule

    mutating func checkSchedule() {
        let s = b.schedule
        let chunkCount = b.chunks.count, stepCount = b.program.count
        if s.order.count != chunkCount {
            fail("schedule.order", "\(s.order.count) entries, expected \(chunkCount) (every chunk once)")
        }
        var position = [Int?](repeating: nil, count: chunkCount)
        for (o, c) in s.order.enumerated() where inRange(c, chunkCount, "chunk", "schedule.order[\(o)]") {
            if let first = position[Int(c)] {
                fail("schedule.order[\(o)]", "chunk \(c) appears twice (also schedule.order[\(first)])")
            } else {
                position[Int(c)] = o
            }
        }
        let issueOK = s.issueStep.count == chunkCount
        if !issueOK {
            fail("schedule.issueStep", "\(s.issueStep.count) entries, expected \(chunkCount) (one per chunk)")
        }
        let usesOK = s.firstUse.count == b.images.count && s.lastUse.count == b.images.count
        for (name, list) in [("firstUse", s.firstUse), ("lastUse", s.lastUse)] where list.count != b.images.count {
            fail("schedule.\(name)", "\(list.count) entries, expected \(b.images.count) (one per image)")
        }
        if s.stepSeconds.count != stepCount {
            fail("schedule.stepSeconds", "\(s.stepSeconds.count) entries, expected \(stepCount) (one per step)")
        }
        for (t, seconds) in s.stepSeconds.enumerated() where !(seconds.isFinite && seconds >= 0) {
            fail("schedule.stepSeconds[\(t)]", "\(seconds) is not a finite time ≥ 0")
        }
        for (name, v) in [("bandwidth", s.bandwidth), ("predictedSeconds", s.predictedSeconds),
                          ("lowerBoundSeconds", s.lowerBoundSeconds)] where !(v.isFinite && v >= 0) {
            fail("schedule.\(name)", "\(v) is not a finite value ≥ 0")
        }
        if usesOK {
            // Which steps really bind each image.
            var firstBound = [Int?](repeating: nil, count: b.images.count)
            var lastBound = [Int?](repeating: nil, count: b.images.count)
            for (t, step) in b.program.enumerated() {
                for case .image(let i) in step.bindings where Int(i) < b.images.count {
                    firstBound[Int(i)] = firstBound[Int(i)] ?? t
                    lastBound[Int(i)] = t
                }
            }
            for i in b.images.indices {
                let first = s.firstUse[i], last = s.lastUse[i]
                if Int(first) >= stepCount || Int(last) >= stepCount || first > last {
                    fail("schedule.firstUse[\(i)]", "uses \(first)...\(last) of images[\(i)] are not steps in order "
                         + "(\(stepCount) steps)")
                    continue
                }
                if let f = firstBound[i], f < Int(first) {
                    fail("schedule.firstUse[\(i)]", "\(first), but program[\(f)] already binds images[\(i)]")
                }
                if let l = lastBound[i], l > Int(last) {
                    fail("schedule.lastUse[\(i)]", "\(last), but program[\(l)] still binds images[\(i)]")
                }
            }
        }
        guard issueOK else { return }
        for (c, issue) in s.issueStep.enumerated() {
            if Int(issue) > stepCount {
                fail("schedule.issueStep[\(c)]", "\(issue) is past the last step (\(stepCount) steps)")
            } else if usesOK, Int(b.chunks[c].image) < b.images.count,
                      issue > s.firstUse[Int(b.chunks[c].image)] {
                let image = Int(b.chunks[c].image)
                fail("schedule.issueStep[\(c)]", "\(issue): the copy would wait for step \(issue) to finish, but "
                     + "images[\(image)] is first used by step \(s.firstUse[image])")
            }
        }
        // A run waits for an image's chunks before its wait step: they must be issued by then (else the copy would
        // wait for a step that waits for it), and landed by the first step that reads it.
        if let waits = s.waitStep {
            if waits.count != b.images.count {
                fail("waits", "\(waits.count) entries, expected \(b.images.count) (one per image)")
            } else if usesOK {
                var lastIssue = [UInt32](repeating: 0, count: b.images.count)
                for (c, chunk) in b.chunks.enumerated() where Int(chunk.image) < b.images.count {
                    lastIssue[Int(chunk.image)] = max(lastIssue[Int(chunk.image)], s.issueStep[c])
                }
                for (i, wait) in waits.enumerated() where wait > s.firstUse[i] || wait < lastIssue[i] {
                    fail("waits[\(i)]", "\(wait): images[\(i)] must be waited for between the issue step of its last "
                         + "chunk (\(lastIssue[i])) and its first use (\(s.firstUse[i]))")
                }
            }
        }
        // The streamer issues chunks in `order`, each once its issue step is reached: a later chunk with an
        // earlier issue step would wait behind it, possibly for a step that needs it (deadlock).
        var latest: (issue: UInt32, at: Int)? = nil
        for (o, c) in s.order.enumerated() where Int(c) < chunkCount {
            let issue = s.issueStep[Int(c)]
            if let l = latest, issue < l.issue {
                fail("schedule.order[\(o)]", "chunk \(c) has issueStep \(issue), after schedule.order[\(l.at)] with "
                     + "issueStep \(l.issue): issue steps must not decrease along the order")
            }
            if latest.map({ issue > $0.issue }) ?? true { latest = (issue, o) }
        }
    }

    // MARK: Requirements

    mutating func checkRequirements() {
        let need = b.tableRequirements()
        let have = b.meta.requirements
        func check(_ field: String, _ declared: UInt64, _ needed: (value: UInt64, by: String)) {
            if declared < needed.value {
                fail("meta.requirements.\(field)", "\(declared), but \(needed.by) needs \(needed.value)")
            }
        }
        check("pushConstantBytes", UInt64(have.pushConstantBytes), need.pushConstantBytes)
        check("storageBufferRange", have.storageBufferRange, need.storageBufferRange)
        check("imageDimension2D", UInt64(have.imageDimension2D), need.imageDimension2D)
        check("imageArrayLayers", UInt64(have.imageArrayLayers), need.imageArrayLayers)
        check("workgroupInvocations", UInt64(have.workgroupInvocations), need.workgroupInvocations)
        for (feature, by) in need.features where !have.features.contains(feature) {
            fail("meta.requirements.features", "\(have.features), but \(by) needs \(feature)")
        }
    }
}

// MARK: - Requirements from the tables

/// The least value of each device limit that a bundle's tables need, and which entry needs it.
struct TableRequirements {
    var pushConstantBytes: (value: UInt64, by: String) = (0, "")
    var storageBufferRange: (value: UInt64, by: String) = (0, "")
    var imageDimension2D: (value: UInt64, by: String) = (0, "")
    var imageArrayLayers: (value: UInt64, by: String) = (0, "")
    var workgroupInvocations: (value: UInt64, by: String) = (0, "")
    /// Features the SPIR-V modules declare capabilities for (`DeviceFeatures.implyingCapabilities`), each with
    /// the first kernel that needs it.
    var features: [(DeviceFeatures, String)] = []
}

extension FMBundle {
    /// `meta.requirements` raised to what the tables need: the largest push-constant block, tensor bound as a
    /// storage buffer, image extent and layer count, and workgroup. Shared memory is not visible in the tables
    /// (it is declared in the SPIR-V), so it is kept as is. Producers can store this in `meta.requirements`;
    /// the validator rejects requirements lower than it.
    public func requirementsCoveringTables() -> DeviceRequirements {
        let need = tableRequirements()
        var r = meta.requirements
        r.pushConstantBytes = max(r.pushConstantBytes, UInt32(clamping: need.pushConstantBytes.value))
        r.storageBufferRange = max(r.storageBufferRange, need.storageBufferRange.value)
        r.imageDimension2D = max(r.imageDimension2D, UInt32(clamping: need.imageDimension2D.value))
        r.imageArrayLayers = max(r.imageArrayLayers, UInt32(clamping: need.imageArrayLayers.value))
        r.workgroupInvocations = max(r.workgroupInvocations, UInt32(clamping: need.workgroupInvocations.value))
        for (feature, _) in need.features { r.features.insert(feature) }
        return r
    }

    /// The OpCapability operands of a SPIR-V module (they open its instruction stream, after the 5-word header).
    static func capabilities(of words: [UInt32]) -> Set<UInt32> {
        var result = Set<UInt32>()
        var i = 5
        while i < words.count {
            let count = Int(words[i] >> 16), opcode = words[i] & 0xFFFF
            guard count > 0 else { break }
            if opcode == 17, i + 1 < words.count {  // OpCapability
                result.insert(words[i + 1])
            } else if opcode != 10 && opcode != 11 {  // past OpExtension / OpExtInstImport: no more capabilities
                break
            }
            i += count
        }
        return result
    }

    func tableRequirements() -> TableRequirements {
        var t = TableRequirements()
        for (k, kernel) in kernels.enumerated() {
            if UInt64(kernel.pushConstantSize) > t.pushConstantBytes.value {
                t.pushConstantBytes = (UInt64(kernel.pushConstantSize), "kernels[\(k)] ('\(kernel.name)')")
            }
            let invocations = kernel.workgroupSize.reduce(UInt64(1)) { mul($0, UInt64($1)) ?? .max }
            if invocations > t.workgroupInvocations.value {
                t.workgroupInvocations = (invocations, "kernels[\(k)] ('\(kernel.name)')")
            }
            if Int(kernel.spirv) < spirv.count {
                let declared = Self.capabilities(of: spirv[Int(kernel.spirv)])
                for implied in DeviceFeatures.implyingCapabilities where declared.contains(implied.capability)
                    && !t.features.contains(where: { $0.0 == implied.feature }) {
                    t.features.append((implied.feature, "kernels[\(k)] ('\(kernel.name)', SPIR-V capability "
                                       + "\(implied.name))"))
                }
            }
        }
        for (s, step) in program.enumerated() {
            for case .tensor(let i) in step.bindings where Int(i) < tensors.count {
                if tensors[Int(i)].size > t.storageBufferRange.value {
                    t.storageBufferRange = (tensors[Int(i)].size, "tensors[\(i)] ('\(tensors[Int(i)].name)', "
                                            + "bound by program[\(s)])")
                }
            }
        }
        for (i, image) in images.enumerated() {
            let side = UInt64(max(image.width, image.height))
            if side > t.imageDimension2D.value { t.imageDimension2D = (side, "images[\(i)] ('\(image.name)')") }
            if UInt64(image.layers) > t.imageArrayLayers.value {
                t.imageArrayLayers = (UInt64(image.layers), "images[\(i)] ('\(image.name)')")
            }
        }
        return t
    }
}

extension MeaningCheck {
    // MARK: Placement

    /// Slots inside the weight space, aligned, inside one segment, large enough for their images; resident slots
    /// share bytes with nothing; streamed slots share bytes only with streamed slots whose windows are disjoint
    /// (the later image's copies wait for the step after the earlier one's last reader); arena + weight space
    /// within the budget the plan was made for.
    /// Each run-time check names a tensor that holds its two flag words, and a positive bound.
    mutating func checkRuntimeChecks() {
        for (c, check) in b.checks.enumerated() {
            guard inRange(check.tensor, b.tensors.count, "tensor", "checks[\(c)].tensor") else { continue }
            let tensor = b.tensors[Int(check.tensor)]
            if tensor.size < 8 {
                fail("checks[\(c)].tensor", "tensor \(check.tensor) ('\(tensor.name)') has \(tensor.size) bytes; a check's "
                     + "flag words need 8")
            }
            if tensor.constant != nil {
                fail("checks[\(c)].tensor", "tensor \(check.tensor) ('\(tensor.name)') is a resident constant")
            }
            if check.kind == .indexInRange && check.bound <= 0 {
                fail("checks[\(c)].bound", "\(check.bound): the indexed axis must have at least one entry")
            }
        }
    }

    mutating func checkPlacement() {
        guard let p = b.placement else { return }
        if p.slots.count != b.images.count {
            fail("placement.slots", "\(p.slots.count) entries, expected \(b.images.count) (one per image)")
            return
        }
        if p.segmentBytes == 0 { fail("placement.segmentBytes", "is 0") }
        if p.weightSpaceBytes > BundleValidator.maxDeviceBytes {
            fail("placement.weightSpaceBytes", "\(p.weightSpaceBytes) bytes exceeds the "
                 + "\(BundleValidator.maxDeviceBytes)-byte limit")
        }
        if p.slotAlignment == 0 || p.slotAlignment & (p.slotAlignment - 1) != 0 {
            fail("placement.slotAlignment", "\(p.slotAlignment) is not a power of two")
        }
        guard issues.isEmpty else { return }
        var placed: [Int] = []
        for (i, slot) in p.slots.enumerated() {
            let path = "placement.slots[\(i)]"
            let (end, overflow) = slot.offset.addingReportingOverflow(slot.size)
            if overflow || end > p.weightSpaceBytes {
                fail(path, "\(slot.offset)+\(slot.size) ends past the weight space (\(p.weightSpaceBytes) bytes)")
                continue
            }
            if slot.size < b.images[i].byteSize {
                fail("\(path).size", "\(slot.size) bytes for images[\(i)] ('\(b.images[i].name)') of \(b.images[i].byteSize)")
            }
            if slot.offset % p.slotAlignment != 0 {
                fail("\(path).offset", "\(slot.offset) is not a multiple of slotAlignment \(p.slotAlignment)")
            }
            if slot.size > 0, slot.offset / p.segmentBytes != (end - 1) / p.segmentBytes {
                fail(path, "\(slot.offset)..<\(end) crosses a segment boundary (segments of \(p.segmentBytes) bytes)")
            }
            placed.append(i)
        }
        let budget = b.schedule.budgetBytes
        if budget > 0, b.meta.arenaSize + p.weightSpaceBytes > budget {
            fail("placement.weightSpaceBytes", "arena \(b.meta.arenaSize) + weights \(p.weightSpaceBytes) bytes exceed the "
                 + "budget of \(budget) bytes (schedule.budgetBytes)")
        }
        // Byte overlaps, by a sweep over slots sorted by offset.
        let windows = b.imageWindows()
        let sorted = placed.filter { p.slots[$0].size > 0 }.sorted { (p.slots[$0].offset, $0) < (p.slots[$1].offset, $1) }
        var open: [Int] = []
        for i in sorted {
            open.removeAll { p.slots[$0].end <= p.slots[i].offset }
            for j in open {
                let a = p.slots[j], c = p.slots[i]
                if a.resident || c.resident {
                    fail("placement.slots[\(i)]", "shares bytes with placement.slots[\(j)], and one of them is resident")
                } else if windows[i].overlaps(windows[j]) {
                    fail("placement.slots[\(i)]", "shares bytes with placement.slots[\(j)] while both are live (steps "
                         + "\(windows[i].lowerBound)...\(windows[i].upperBound) and \(windows[j].lowerBound)...\(windows[j].upperBound))")
                }
            }
            open.append(i)
        }
    }
}
