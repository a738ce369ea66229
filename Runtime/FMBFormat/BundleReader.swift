// Reads `.fmb` files: map, check the layout, decode the sections (mirroring `BundleWriter`'s encoders field
// by field), validate, and hand back a `LoadedBundle` whose data section points into the mapping.

/// A bundle decoded from bytes, before it is tied to a mapping.
public struct ParsedBundle: Equatable, Sendable {
    public var bundle: FMBundle
    public var layout: FileLayout
    /// The data section as a range of the parsed bytes (starts at a multiple of 4096).
    public var dataRange: Range<Int>
    /// Per tensor, the fm64 of its resident constant's bytes (0 for other tensors); nil before format 1.3.
    public var constantChecksums: [UInt64]? = nil
}

/// Parses bundles. Stateless and thread-safe.
public enum BundleReader {
    /// Maps `path`, parses and validates it (both passes), and returns it with `data` pointing into the
    /// mapping; nothing is copied. With `verifyChecksums`, also checks the data section checksum and decodes
    /// every chunk to check its fm64 (reads the whole file: seconds for gigabytes).
    /// Throws `FileError` (I/O) or `FormatError` (every problem found, attributed to `path`).
    public static func open(path: String, verifyChecksums: Bool = false) throws -> LoadedBundle {
        let file = try MappedFile(path: path)
        let parsed: ParsedBundle
        do {
            parsed = try parse(bytes: file.bytes, verifyChecksums: verifyChecksums)
        } catch let error as FormatError {
            throw error.at(path)
        }
        let data = UnsafeRawBufferPointer(rebasing: file.bytes[parsed.dataRange])
        return LoadedBundle(bundle: parsed.bundle, file: file, data: data, constantChecksums: parsed.constantChecksums,
                            validated: true)
    }

    /// Parses and validates bundle bytes (a whole file). Runs the structure pass over the layout, decodes
    /// the sections, runs the structure pass over payload ranges and then the meaning pass, then (optionally)
    /// the checksums; throws `FormatError` at the first pass that finds problems, with all of that pass's.
    public static func parse(bytes: UnsafeRawBufferPointer, verifyChecksums: Bool = false) throws -> ParsedBundle {
        let (layout, layoutIssues) = BundleValidator.checkFile(bytes)
        guard let layout, layoutIssues.isEmpty else { throw FormatError(issues: layoutIssues) }
        let bundle = try decode(bytes, layout: layout)
        let featureIssues = BundleValidator.checkDeviceFeatures(bundle.meta.requirements.features, flags: layout.flags,
                                                                minor: layout.minor)
        guard featureIssues.isEmpty else { throw FormatError(issues: featureIssues) }
        var constantChecksums: [UInt64]? = nil
        if let section = layout.section(.constantChecksums) {
            var r = ByteReader(bytes, range: section.range, section: "constantChecksums")
            constantChecksums = try decodeConstantChecksums(&r, tensorCount: bundle.tensors.count)
            try r.finish()
        }
        let data = layout.dataRange
        let issues = BundleValidator.validate(bundle, dataSize: UInt64(data.count))
        if !issues.isEmpty { throw FormatError(issues: issues) }
        if verifyChecksums {
            let dataBytes = UnsafeRawBufferPointer(rebasing: bytes[data])
            var problems: [FormatIssue] = []
            if let entry = layout.section(.data), Checksum.fm64(dataBytes) != entry.checksum {
                let index = layout.sections.firstIndex(of: entry)!
                problems.append(FormatIssue(.checksum, "sections[\(index)].checksum",
                                            "data section checksum mismatch", fileOffset: data.lowerBound))
            }
            problems += BundleValidator.verifyChecksums(bundle, data: dataBytes)
            if !problems.isEmpty { throw FormatError(issues: problems) }
        }
        return ParsedBundle(bundle: bundle, layout: layout, dataRange: data, constantChecksums: constantChecksums)
    }

    /// Parses bundle bytes held in memory into a `LoadedBundle` (the data section is copied once into
    /// aligned storage). For tests and tools; files should go through `open(path:)`.
    public static func load(bytes: [UInt8], verifyChecksums: Bool = false, path: String = "<memory>") throws
        -> LoadedBundle {
        let parsed: ParsedBundle
        do {
            parsed = try bytes.withUnsafeBytes { try parse(bytes: $0, verifyChecksums: verifyChecksums) }
        } catch let error as FormatError {
            throw error.at(path)
        }
        return LoadedBundle(bundle: parsed.bundle, payload: Array(bytes[parsed.dataRange]), path: path,
                            constantChecksums: parsed.constantChecksums, validated: true)
    }

    // MARK: - Section decoders (mirror BundleWriter's encoders)

    /// Decodes the v1 sections of a layout the structure pass accepted. Unknown section kinds are skipped.
    static func decode(_ file: UnsafeRawBufferPointer, layout: FileLayout) throws -> FMBundle {
        func reader(_ kind: SectionKind) -> ByteReader {
            ByteReader(file, range: layout.section(kind)!.range, section: kind.description)
        }
        var r = reader(.meta)
        let meta = try decodeMeta(&r)
        try r.finish()
        r = reader(.kernels)
        let (spirv, kernels) = try decodeKernels(&r)
        try r.finish()
        r = reader(.program)
        let program = try decodeProgram(&r)
        try r.finish()
        r = reader(.tensors)
        let tensors = try decodeTensors(&r)
        try r.finish()
        r = reader(.images)
        let images = try decodeImages(&r)
        try r.finish()
        r = reader(.chunks)
        let chunks = try decodeChunks(&r)
        try r.finish()
        r = reader(.schedule)
        var schedule = try decodeSchedule(&r)
        try r.finish()
        if layout.section(.waits) != nil {
            r = reader(.waits)
            let n = try r.count("waits", minElementSize: 4)
            schedule.waitStep = try r.u32s(n, "waits")
            try r.finish()
        }
        var steps = program
        if layout.section(.predicates) != nil {
            r = reader(.predicates)
            try decodePredicates(&r, into: &steps)
            try r.finish()
        }
        var placement: Placement? = nil
        if layout.section(.placement) != nil {
            r = reader(.placement)
            placement = try decodePlacement(&r)
            try r.finish()
        }
        var checks: [RuntimeCheck] = []
        if layout.section(.checks) != nil {
            r = reader(.checks)
            checks = try decodeChecks(&r)
            try r.finish()
        }
        return FMBundle(meta: meta, spirv: spirv, kernels: kernels, program: steps, tensors: tensors,
                        images: images, chunks: chunks, schedule: schedule, placement: placement, checks: checks)
    }

    static func decodeMeta(_ r: inout ByteReader) throws -> Meta {
        let name = try r.string("meta.modelName")
        let producer = try r.string("meta.producer")
        let arena = try r.u64("meta.arenaSize")
        var req = DeviceRequirements()
        req.pushConstantBytes = try r.u32("meta.requirements.pushConstantBytes")
        req.imageDimension2D = try r.u32("meta.requirements.imageDimension2D")
        req.imageArrayLayers = try r.u32("meta.requirements.imageArrayLayers")
        req.workgroupInvocations = try r.u32("meta.requirements.workgroupInvocations")
        req.sharedMemoryBytes = try r.u32("meta.requirements.sharedMemoryBytes")
        req.features = DeviceFeatures(rawValue: try r.u32("meta.requirements.features"))
        req.storageBufferRange = try r.u64("meta.requirements.storageBufferRange")
        var lists: [[IOBinding]] = []
        for list in ["meta.inputs", "meta.outputs"] {
            let n = try r.count(list, minElementSize: 16)
            var ios: [IOBinding] = []
            ios.reserveCapacity(n)
            for i in 0..<n {
                let path = "\(list)[\(i)]"
                let ioName = try r.string("\(path).name")
                let rawType = try r.u8("\(path).elementType")
                guard let type = ElementType(rawValue: rawType) else {
                    throw r.fail("\(path).elementType", "unknown element type \(rawType)")
                }
                try r.skip(3, "\(path).reserved")
                let tensor = try r.u32("\(path).tensor")
                let rank = try r.count("\(path).shape", minElementSize: 8)
                var shape: [Int64] = []
                for d in 0..<rank { shape.append(try r.i64("\(path).shape[\(d)]")) }
                ios.append(IOBinding(name: ioName, elementType: type, shape: shape, tensor: tensor))
            }
            lists.append(ios)
        }
        return Meta(modelName: name, producer: producer, inputs: lists[0], outputs: lists[1],
                    requirements: req, arenaSize: arena)
    }

    static func decodeKernels(_ r: inout ByteReader) throws -> ([[UInt32]], [Kernel]) {
        let moduleCount = try r.count("spirv", minElementSize: 16)
        var spirv: [[UInt32]] = []
        spirv.reserveCapacity(moduleCount)
        for m in 0..<moduleCount {
            try r.align(to: 8, "spirv[\(m)]")
            let words = Int(try r.u32("spirv[\(m)].wordCount"))
            try r.skip(4, "spirv[\(m)].reserved")
            let hash = try r.u64("spirv[\(m)].hash")
            let hashOffset = r.position - 8
            let module = try r.u32s(words, "spirv[\(m)].words")
            if module.withUnsafeBytes({ Checksum.fm64($0) }) != hash {
                throw FormatError(FormatIssue(.checksum, "spirv[\(m)].hash",
                                              "does not match the module's \(words) words", fileOffset: hashOffset))
            }
            spirv.append(module)
        }
        let kernelCount = try r.count("kernels", minElementSize: 32)
        var kernels: [Kernel] = []
        kernels.reserveCapacity(kernelCount)
        for k in 0..<kernelCount {
            let path = "kernels[\(k)]"
            let name = try r.string("\(path).name")
            let module = try r.u32("\(path).spirv")
            let push = try r.u32("\(path).pushConstantSize")
            var workgroup: [UInt32] = []
            for i in 0..<3 { workgroup.append(try r.u32("\(path).workgroupSize[\(i)]")) }
            let bindingCount = try r.count("\(path).bindings", minElementSize: 1)
            var bindings: [BindingKind] = []
            for b in 0..<bindingCount {
                let raw = try r.u8("\(path).bindings[\(b)]")
                guard let kind = BindingKind(rawValue: raw) else {
                    throw r.fail("\(path).bindings[\(b)]", "unknown binding kind \(raw)")
                }
                bindings.append(kind)
            }
            let specCount = try r.count("\(path).specConstants", minElementSize: 4)
            let spec = try r.u32s(specCount, "\(path).specConstants")
            kernels.append(Kernel(name: name, spirv: module, bindings: bindings, pushConstantSize: push,
                                  workgroupSize: workgroup, specConstants: spec))
        }
        return (spirv, kernels)
    }

    static func decodeProgram(_ r: inout ByteReader) throws -> [Step] {
        let n = try r.count("program", minElementSize: 28)
        var steps: [Step] = []
        steps.reserveCapacity(n)
        for s in 0..<n {
            let path = "program[\(s)]"
            let kernel = try r.u32("\(path).kernel")
            var groups: [UInt32] = []
            for i in 0..<3 { groups.append(try r.u32("\(path).groups[\(i)]")) }
            let bindingCount = try r.count("\(path).bindings", minElementSize: 8)
            var bindings: [BindingRef] = []
            for b in 0..<bindingCount {
                let raw = try r.u8("\(path).bindings[\(b)].kind")
                try r.skip(3, "\(path).bindings[\(b)].reserved")
                let index = try r.u32("\(path).bindings[\(b)].index")
                switch BindingKind(rawValue: raw) {
                case .storageBuffer: bindings.append(.tensor(index))
                case .storageImage: bindings.append(.image(index))
                case nil: throw r.fail("\(path).bindings[\(b)].kind", "unknown binding kind \(raw)")
                }
            }
            let pushCount = try r.count("\(path).pushConstants", minElementSize: 1)
            let push = try r.bytes(pushCount, "\(path).pushConstants")
            let label = try r.string("\(path).label")
            steps.append(Step(kernel: kernel, groups: groups, bindings: bindings, pushConstants: push, label: label))
        }
        return steps
    }

    static func decodeTensors(_ r: inout ByteReader) throws -> [Tensor] {
        let n = try r.count("tensors", minElementSize: 44)
        var tensors: [Tensor] = []
        tensors.reserveCapacity(n)
        for t in 0..<n {
            let path = "tensors[\(t)]"
            let name = try r.string("\(path).name")
            let offset = try r.u64("\(path).offset")
            let size = try r.u64("\(path).size")
            let flags = try r.u8("\(path).flags")
            try r.skip(7, "\(path).reserved")
            let constantOffset = try r.u64("\(path).constant.offset")
            let constantSize = try r.u64("\(path).constant.size")
            let constant = flags & 1 != 0 ? DataRange(offset: constantOffset, size: constantSize) : nil
            tensors.append(Tensor(name: name, offset: offset, size: size, constant: constant))
        }
        return tensors
    }

    static func decodeImages(_ r: inout ByteReader) throws -> [Image] {
        let n = try r.count("images", minElementSize: 20)
        var images: [Image] = []
        images.reserveCapacity(n)
        for i in 0..<n {
            let path = "images[\(i)]"
            let name = try r.string("\(path).name")
            let raw = try r.u8("\(path).format")
            guard let format = ImageFormat(rawValue: raw) else {
                let known = ImageFormat.allCases.map(\.rawValue)
                throw r.fail("\(path).format", "unknown image format \(raw) (this reader, of format "
                             + "\(FileLayout.currentMajor).\(FileLayout.currentMinor), knows \(known.min()!) to \(known.max()!): "
                             + "a newer fmc wrote the bundle)")
            }
            try r.skip(3, "\(path).reserved")
            let width = try r.u32("\(path).width")
            let height = try r.u32("\(path).height")
            let layers = try r.u32("\(path).layers")
            images.append(Image(name: name, format: format, width: width, height: height, layers: layers))
        }
        return images
    }

    static func decodeChunks(_ r: inout ByteReader) throws -> [Chunk] {
        let n = try r.count("chunks", minElementSize: BundleWriter.chunkRecordSize)
        try r.skip(4, "chunks.reserved")
        var chunks: [Chunk] = []
        chunks.reserveCapacity(n)
        for c in 0..<n {
            let path = "chunks[\(c)]"
            let image = try r.u32("\(path).image")
            let layer = try r.u32("\(path).layer")
            let y = try r.u32("\(path).y")
            let rows = try r.u32("\(path).rows")
            let offset = try r.u64("\(path).payload.offset")
            let size = try r.u64("\(path).payload.size")
            let rawSize = try r.u64("\(path).rawSize")
            let rawCodec = try r.u8("\(path).codec")
            guard let codec = Codec(rawValue: rawCodec) else {
                throw r.fail("\(path).codec", "unknown codec \(rawCodec)")
            }
            try r.skip(7, "\(path).reserved")
            let checksum = try r.u64("\(path).checksum")
            chunks.append(Chunk(image: image, layer: layer, y: y, rows: rows,
                                payload: DataRange(offset: offset, size: size), rawSize: rawSize, codec: codec,
                                checksum: checksum))
        }
        return chunks
    }

    /// Attaches each record to its step. Steps must be in range and strictly increasing (one predicate per step).
    static func decodePredicates(_ r: inout ByteReader, into steps: inout [Step]) throws {
        let n = try r.count("predicates", minElementSize: 12)
        var previous: UInt32? = nil
        for i in 0..<n {
            let path = "predicates[\(i)]"
            let step = try r.u32("\(path).step")
            let tensor = try r.u32("\(path).tensor")
            let rawSense = try r.u8("\(path).sense")
            try r.skip(3, "\(path).reserved")
            guard let sense = PredicateSense(rawValue: rawSense) else {
                throw r.fail("\(path).sense", "unknown predicate sense \(rawSense)")
            }
            guard Int(step) < steps.count else {
                throw r.fail("\(path).step", "step \(step) out of range (\(steps.count) steps)")
            }
            if let previous, step <= previous {
                throw r.fail("\(path).step", "step \(step) after step \(previous): records must be in increasing step "
                             + "order, one per step")
            }
            previous = step
            steps[Int(step)].predicate = StepPredicate(tensor: tensor, sense: sense)
        }
    }

    static func decodeSchedule(_ r: inout ByteReader) throws -> Schedule {
        let budget = try r.u64("schedule.budgetBytes")
        let bandwidth = try r.f64("schedule.bandwidth")
        let predicted = try r.f64("schedule.predictedSeconds")
        let lowerBound = try r.f64("schedule.lowerBoundSeconds")
        var lists: [[UInt32]] = []
        for name in ["order", "issueStep", "firstUse", "lastUse"] {
            let n = try r.count("schedule.\(name)", minElementSize: 4)
            lists.append(try r.u32s(n, "schedule.\(name)"))
        }
        let n = try r.count("schedule.stepSeconds", minElementSize: 8)
        var seconds: [Double] = []
        seconds.reserveCapacity(n)
        for i in 0..<n { seconds.append(try r.f64("schedule.stepSeconds[\(i)]")) }
        return Schedule(order: lists[0], issueStep: lists[1], firstUse: lists[2], lastUse: lists[3],
                        budgetBytes: budget, bandwidth: bandwidth, stepSeconds: seconds,
                        predictedSeconds: predicted, lowerBoundSeconds: lowerBound)
    }

    static func decodeChecks(_ r: inout ByteReader) throws -> [RuntimeCheck] {
        let n = try r.count("checks", minElementSize: 20)
        var checks: [RuntimeCheck] = []
        checks.reserveCapacity(n)
        for i in 0..<n {
            let path = "checks[\(i)]"
            let rawKind = try r.u8("\(path).kind")
            guard let kind = RuntimeCheck.Kind(rawValue: rawKind) else {
                throw r.fail("\(path).kind", "unknown check kind \(rawKind)")
            }
            try r.skip(3, "\(path).reserved")
            let tensor = try r.u32("\(path).tensor")
            let bound = try r.i64("\(path).bound")
            let node = try r.string("\(path).node")
            checks.append(RuntimeCheck(kind: kind, tensor: tensor, node: node, bound: bound))
        }
        return checks
    }

    /// One fm64 per tensor (1.3).
    static func decodeConstantChecksums(_ r: inout ByteReader, tensorCount: Int) throws -> [UInt64] {
        let n = try r.count("constantChecksums", minElementSize: 8)
        try r.skip(4, "constantChecksums.reserved")
        guard n == tensorCount else {
            throw r.fail("constantChecksums", "has \(n) entries for \(tensorCount) tensors")
        }
        var sums: [UInt64] = []
        sums.reserveCapacity(n)
        for i in 0..<n { sums.append(try r.u64("constantChecksums[\(i)]")) }
        return sums
    }

    static func decodePlacement(_ r: inout ByteReader) throws -> Placement {
        let space = try r.u64("placement.weightSpaceBytes")
        let segment = try r.u64("placement.segmentBytes")
        let alignment = try r.u64("placement.slotAlignment")
        let rawMethod = try r.u8("placement.method")
        guard let method = Placement.Method(rawValue: rawMethod) else {
            throw r.fail("placement.method", "unknown method \(rawMethod)")
        }
        try r.skip(7, "placement.reserved")
        let n = try r.count("placement.slots", minElementSize: 24)
        try r.skip(4, "placement.reserved")
        var slots: [Placement.Slot] = []
        slots.reserveCapacity(n)
        for i in 0..<n {
            let offset = try r.u64("placement.slots[\(i)].offset")
            let size = try r.u64("placement.slots[\(i)].size")
            let flags = try r.u8("placement.slots[\(i)].flags")
            guard flags & ~1 == 0 else {
                throw r.fail("placement.slots[\(i)].flags", "unknown flag bits 0x\(String(flags & ~1, radix: 16))")
            }
            try r.skip(7, "placement.slots[\(i)].reserved")
            slots.append(Placement.Slot(resident: flags & 1 != 0, offset: offset, size: size))
        }
        return Placement(weightSpaceBytes: space, segmentBytes: segment, slotAlignment: alignment, method: method,
                         slots: slots)
    }
}
