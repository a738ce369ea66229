// Produces `.fmb` bytes from an `FMBundle` and its data section (FORMAT.md is the spec; `BundleReader`
// mirrors every encoder here field by field). The compiler is the only producer; it never writes bytes itself.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serializes bundles. Stateless and thread-safe.
public enum BundleWriter {
    /// The whole file as bytes: header, section table, sections, and `payload` as the data section.
    ///
    /// The SPIR-V table is deduplicated first (`FMBundle.deduplicatingSPIRV()`), so the file may list fewer
    /// modules than `bundle.spirv`. With `validate` (the default) the bundle must pass both validation
    /// passes against `payload`, or this throws `FormatError` and nothing is produced; tests that need
    /// invalid files pass `validate: false`.
    public static func serialize(_ bundle: FMBundle, payload: [UInt8], validate: Bool = true) throws -> [UInt8] {
        var file = try prefix(bundle, payload: payload, validate: validate)
        file += payload
        return file
    }

    /// Writes the bundle to `path` atomically: into a temporary file in the same directory, `fsync`, then
    /// `rename` over `path`. A failure (or a crash) never leaves a partial bundle at `path`; the temporary
    /// file is removed on failure. Throws `FormatError` for an invalid bundle, `FileError` for I/O.
    public static func write(_ bundle: FMBundle, payload: [UInt8], to path: String, validate: Bool = true) throws {
        try payload.withUnsafeBytes { try write(bundle, payload: $0, to: path, validate: validate) }
    }

    /// `write(_:payload:to:validate:)` with the data section from any memory, e.g. another bundle's mapping
    /// (`fmc replan` writes a new plan beside an existing payload without copying it into an array).
    public static func write(_ bundle: FMBundle, payload: UnsafeRawBufferPointer, to path: String,
                             validate: Bool = true) throws {
        let head = try prefix(bundle, payload: payload, validate: validate)
        let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FileError(path: temp, call: "open", errno: errno) }
        var closed = false
        do {
            try head.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: temp) }
            if !payload.isEmpty { try FileIO.writeAll(fd, payload, path: temp) }
            guard fsync(fd) == 0 else { throw FileError(path: temp, call: "fsync", errno: errno) }
            closed = true
            guard close(fd) == 0 else { throw FileError(path: temp, call: "close", errno: errno) }
            guard rename(temp, path) == 0 else { throw FileError(path: path, call: "rename", errno: errno) }
        } catch {
            if !closed { close(fd) }
            unlink(temp)
            throw error
        }
    }

    /// Everything before the data section, padded so the data section starts at a multiple of 4096.
    static func prefix(_ input: FMBundle, payload: [UInt8], validate: Bool) throws -> [UInt8] {
        try payload.withUnsafeBytes { try prefix(input, payload: $0, validate: validate) }
    }

    static func prefix(_ input: FMBundle, payload: UnsafeRawBufferPointer, validate: Bool) throws -> [UInt8] {
        try prefix(input, dataSize: UInt64(payload.count), dataChecksum: Checksum.fm64(payload),
                   constantChecksum: { checksum(of: payload, offset: $0, size: $1) }, validate: validate)
    }

    /// Everything before a data section of `dataSize` bytes whose fm64 is `dataChecksum` (all the tables need of
    /// it, so `StreamingBundleWriter` can write them after the payload); `constantChecksum(offset, size)` is the
    /// fm64 of a constant's bytes in it (nil: not inside it).
    static func prefix(_ input: FMBundle, dataSize: UInt64, dataChecksum: UInt64,
                       constantChecksum: (_ offset: UInt64, _ size: UInt64) throws -> UInt64?,
                       validate: Bool) throws -> [UInt8] {
        let bundle = input.deduplicatingSPIRV()
        if validate {
            let issues = BundleValidator.validate(bundle, dataSize: dataSize)
            if !issues.isEmpty { throw FormatError(file: "<writer>", issues: issues) }
        }
        // The lowest version that holds the file: predicated steps need 1.1, a placement 1.2, device features
        // 1.3, each with its must-understand flag; waits 1.4; images of 8 halves per texel 1.5.
        let predicated = bundle.hasPredicatedSteps
        let featured = !bundle.meta.requirements.features.isEmpty
        // Constant checksums (1.3) go with a placement (every bundle fmc writes), so 1.0–1.1 files keep their bytes.
        let constantChecksums = bundle.placement != nil && bundle.tensors.contains { $0.constant != nil }
            ? try encodeConstantChecksums(bundle.tensors, checksum: constantChecksum) : nil
        let waits = bundle.schedule.waitStep
        let halfTexels = bundle.images.contains { $0.format == .half8 }
        let minor: UInt16 = halfTexels ? 5 : waits != nil ? 4 : featured || constantChecksums != nil || !bundle.checks.isEmpty ? 3
            : bundle.placement != nil ? 2 : predicated ? 1 : 0
        let flags = (predicated ? FileLayout.predicatedStepsFlag : 0)
            | (bundle.placement != nil ? FileLayout.placementFlag : 0)
            | (featured ? FileLayout.deviceFeaturesFlag : 0)
        let bodies: [(SectionKind, [UInt8])] = [
            (.meta, encodeMeta(bundle.meta)),
            (.kernels, encodeKernels(bundle)),
            (.program, encodeProgram(bundle.program)),
            (.tensors, encodeTensors(bundle.tensors)),
            (.images, encodeImages(bundle.images)),
            (.chunks, encodeChunks(bundle.chunks)),
            (.schedule, encodeSchedule(bundle.schedule)),
        ] + (predicated ? [(.predicates, encodePredicates(bundle.program))] : [])
          + (bundle.placement.map { [(.placement, encodePlacement($0))] } ?? [])
          + (constantChecksums.map { [(.constantChecksums, $0)] } ?? [])
          + (bundle.checks.isEmpty ? [] : [(.checks, encodeChecks(bundle.checks))])
          + (waits.map { [(.waits, encodeWaits($0))] } ?? [])
        let sectionCount = bodies.count + 1
        var w = ByteWriter()
        w.zeros(FileLayout.headerSize + sectionCount * FileLayout.sectionEntrySize)
        var entries: [SectionEntry] = []
        for (kind, body) in bodies {
            w.align(to: FileLayout.sectionAlignment)
            entries.append(SectionEntry(kind: kind, offset: UInt64(w.count), size: UInt64(body.count),
                                        checksum: Checksum.fm64(body)))
            w.raw(body)
        }
        w.align(to: FileLayout.dataAlignment)
        entries.append(SectionEntry(kind: .data, offset: UInt64(w.count), size: dataSize, checksum: dataChecksum))

        var table = ByteWriter()
        for e in entries {
            table.u32(e.kind.rawValue)  // kind
            table.u32(e.flags)  // flags (reserved)
            table.u64(e.offset)  // offset from file start
            table.u64(e.size)  // size in bytes
            table.u64(e.checksum)  // fm64 of the section bytes
        }
        var header = ByteWriter()
        header.raw(FileLayout.magic)  // magic "FMB\0"
        header.u16(FileLayout.currentMajor)  // major
        header.u16(minor)  // minor
        header.u32(flags)  // flags
        header.u32(UInt32(FileLayout.headerSize))  // headerSize
        header.u64(UInt64(w.count) + dataSize)  // fileSize
        header.u64(UInt64(FileLayout.headerSize))  // sectionTableOffset: right after the header
        header.u32(UInt32(sectionCount))  // sectionCount
        header.u32(UInt32(FileLayout.sectionEntrySize))  // sectionEntrySize
        header.u64(Checksum.fm64(table.bytes))  // sectionTableChecksum
        header.raw(FileLayout.producerTag(bundle.meta.producer))  // producer tag, NUL-padded
        assert(header.count == FileLayout.headerSize)

        var bytes = w.bytes
        bytes.replaceSubrange(0..<header.count, with: header.bytes)
        bytes.replaceSubrange(header.count..<header.count + table.count, with: table.bytes)
        return bytes
    }

    // MARK: - Section encoders (order and widths: FORMAT.md, one encoder per section)

    static func encodeMeta(_ meta: Meta) -> [UInt8] {
        var w = ByteWriter()
        w.string(meta.modelName)
        w.string(meta.producer)
        w.u64(meta.arenaSize)
        let r = meta.requirements
        w.u32(r.pushConstantBytes)
        w.u32(r.imageDimension2D)
        w.u32(r.imageArrayLayers)
        w.u32(r.workgroupInvocations)
        w.u32(r.sharedMemoryBytes)
        w.u32(r.features.rawValue)  // features (1.3; reserved 0 before)
        w.u64(r.storageBufferRange)
        for list in [meta.inputs, meta.outputs] {
            w.count(list.count)
            for io in list {
                w.string(io.name)
                w.u8(io.elementType.rawValue)
                w.zeros(3)  // reserved
                w.u32(io.tensor)
                w.count(io.shape.count)
                for d in io.shape { w.i64(d) }
            }
        }
        return w.bytes
    }

    static func encodeKernels(_ bundle: FMBundle) -> [UInt8] {
        var w = ByteWriter()
        w.count(bundle.spirv.count)
        for module in bundle.spirv {
            w.align(to: 8)  // so the words are 8-aligned in the file and can be used in place
            w.u32(UInt32(clamping: module.count))
            w.u32(0)  // reserved
            w.u64(module.withUnsafeBytes { Checksum.fm64($0) })
            w.u32s(module)
        }
        w.count(bundle.kernels.count)
        for k in bundle.kernels {
            w.string(k.name)
            w.u32(k.spirv)
            w.u32(k.pushConstantSize)
            for i in 0..<3 { w.u32(i < k.workgroupSize.count ? k.workgroupSize[i] : 0) }
            w.count(k.bindings.count)
            for b in k.bindings { w.u8(b.rawValue) }
            w.count(k.specConstants.count)
            w.u32s(k.specConstants)
        }
        return w.bytes
    }

    static func encodeProgram(_ program: [Step]) -> [UInt8] {
        var w = ByteWriter()
        w.count(program.count)
        for s in program {
            w.u32(s.kernel)
            for i in 0..<3 { w.u32(i < s.groups.count ? s.groups[i] : 0) }
            w.count(s.bindings.count)
            for b in s.bindings {
                switch b {
                case .tensor(let t):
                    w.u8(BindingKind.storageBuffer.rawValue)
                    w.zeros(3)
                    w.u32(t)
                case .image(let i):
                    w.u8(BindingKind.storageImage.rawValue)
                    w.zeros(3)
                    w.u32(i)
                }
            }
            w.count(s.pushConstants.count)
            w.raw(s.pushConstants)
            w.string(s.label)
        }
        return w.bytes
    }

    static func encodeTensors(_ tensors: [Tensor]) -> [UInt8] {
        var w = ByteWriter()
        w.count(tensors.count)
        for t in tensors {
            w.string(t.name)
            w.u64(t.offset)
            w.u64(t.size)
            w.u8(t.constant == nil ? 0 : 1)  // flags: bit 0 = resident constant
            w.zeros(7)  // reserved
            w.u64(t.constant?.offset ?? 0)
            w.u64(t.constant?.size ?? 0)
        }
        return w.bytes
    }

    static func encodeImages(_ images: [Image]) -> [UInt8] {
        var w = ByteWriter()
        w.count(images.count)
        for i in images {
            w.string(i.name)
            w.u8(i.format.rawValue)
            w.zeros(3)  // reserved
            w.u32(i.width)
            w.u32(i.height)
            w.u32(i.layers)
        }
        return w.bytes
    }

    /// Fixed 56-byte records after an 8-byte head, so the table can be indexed in place.
    static let chunkRecordSize = 56

    static func encodeChunks(_ chunks: [Chunk]) -> [UInt8] {
        var w = ByteWriter()
        w.count(chunks.count)
        w.u32(0)  // reserved, aligns the records to 8
        for c in chunks {
            w.u32(c.image)
            w.u32(c.layer)
            w.u32(c.y)
            w.u32(c.rows)
            w.u64(c.payload.offset)
            w.u64(c.payload.size)
            w.u64(c.rawSize)
            w.u8(c.codec.rawValue)
            w.zeros(7)  // reserved
            w.u64(c.checksum)
        }
        return w.bytes
    }

    /// One 12-byte record per predicated step, in step order.
    static func encodePredicates(_ program: [Step]) -> [UInt8] {
        var w = ByteWriter()
        let predicated = program.enumerated().compactMap { k, step in step.predicate.map { (k, $0) } }
        w.count(predicated.count)
        for (k, predicate) in predicated {
            w.u32(UInt32(k))  // step
            w.u32(predicate.tensor)
            w.u8(predicate.sense.rawValue)
            w.zeros(3)  // reserved
        }
        return w.bytes
    }

    static func encodeSchedule(_ s: Schedule) -> [UInt8] {
        var w = ByteWriter()
        w.u64(s.budgetBytes)
        w.f64(s.bandwidth)
        w.f64(s.predictedSeconds)
        w.f64(s.lowerBoundSeconds)
        for list in [s.order, s.issueStep, s.firstUse, s.lastUse] {
            w.count(list.count)
            w.u32s(list)
        }
        w.count(s.stepSeconds.count)
        for t in s.stepSeconds { w.f64(t) }
        return w.bytes
    }

    static func encodeWaits(_ waitStep: [UInt32]) -> [UInt8] {
        var w = ByteWriter()
        w.count(waitStep.count)
        w.u32s(waitStep)
        return w.bytes
    }

    static func encodePlacement(_ p: Placement) -> [UInt8] {
        var w = ByteWriter()
        w.u64(p.weightSpaceBytes)
        w.u64(p.segmentBytes)
        w.u64(p.slotAlignment)
        w.u8(p.method.rawValue)
        w.zeros(7)  // reserved
        w.count(p.slots.count)
        w.u32(0)  // reserved: keeps the records 8-aligned
        for slot in p.slots {
            w.u64(slot.offset)
            w.u64(slot.size)
            w.u8(slot.resident ? 1 : 0)  // flags, bit 0: resident
            w.zeros(7)  // reserved
        }
        return w.bytes
    }
}

extension BundleWriter {
    static func encodeChecks(_ checks: [RuntimeCheck]) -> [UInt8] {
        var w = ByteWriter()
        w.count(checks.count)
        for check in checks {
            w.u8(check.kind.rawValue)
            w.zeros(3)  // reserved
            w.u32(check.tensor)
            w.i64(check.bound)
            w.string(check.node)
        }
        return w.bytes
    }

    /// One fm64 per tensor, in tensor order: of its constant's bytes in the data section (`checksum(offset, size)`,
    /// nil when they are not inside it), 0 for a tensor without one.
    static func encodeConstantChecksums(_ tensors: [Tensor],
                                        checksum: (_ offset: UInt64, _ size: UInt64) throws -> UInt64?) rethrows -> [UInt8] {
        var w = ByteWriter()
        w.count(tensors.count)
        w.u32(0)  // reserved: keeps the checksums 8-aligned
        for tensor in tensors {
            w.u64(try tensor.constant.flatMap { try checksum($0.offset, $0.size) } ?? 0)
        }
        return w.bytes
    }
}

/// The fm64 of `size` bytes at `offset` of an in-memory data section; nil when they are not inside it.
func checksum(of payload: UnsafeRawBufferPointer, offset: UInt64, size: UInt64) -> UInt64? {
    guard let end = add(offset, size), end <= UInt64(payload.count) else { return nil }
    return Checksum.fm64(UnsafeRawBufferPointer(rebasing: payload[Int(offset)..<Int(end)]))
}

// MARK: - SPIR-V deduplication

extension FMBundle {
    /// The same bundle with byte-identical SPIR-V modules merged (first occurrence kept, in order) and kernel
    /// `spirv` indices remapped. Kernel indices that are out of range are left as they are (the validator
    /// reports them).
    public func deduplicatingSPIRV() -> FMBundle {
        var firstIndex: [[UInt32]: UInt32] = [:]
        var kept: [[UInt32]] = []
        var remap: [UInt32] = []
        for module in spirv {
            if let i = firstIndex[module] {
                remap.append(i)
            } else {
                let i = UInt32(kept.count)
                firstIndex[module] = i
                kept.append(module)
                remap.append(i)
            }
        }
        if kept.count == spirv.count { return self }
        var out = self
        out.spirv = kept
        for k in out.kernels.indices where Int(out.kernels[k].spirv) < remap.count {
            out.kernels[k].spirv = remap[Int(out.kernels[k].spirv)]
        }
        return out
    }
}
