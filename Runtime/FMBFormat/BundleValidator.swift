// Validation of bundles (FORMAT.md "Validation"), in two passes as IREE does: structure first (the bytes:
// header, section table, payload ranges, alignment), then meaning (what the tables say). Meaning checks run
// only on a bundle whose structure passed. Every issue names the path of its field.
//
// This file: entry points, the structure pass and checksum verification. BundleValidator+Meaning.swift: the
// meaning pass.

/// Checks bundles. Stateless and thread-safe; never traps on bad input (all arithmetic on file values is
/// overflow-checked).
public enum BundleValidator {
    /// Both passes over an in-memory bundle whose data section is `dataSize` bytes: structure (payload
    /// ranges and alignment), then, if that found nothing, meaning. The writer runs this before writing;
    /// the reader after decoding.
    public static func validate(_ bundle: FMBundle, dataSize: UInt64) -> [FormatIssue] {
        let structure = checkStructure(bundle, dataSize: dataSize)
        if !structure.isEmpty { return structure }
        return checkMeaning(bundle)
    }

    // MARK: - Structure: file layout

    /// The structure pass over a file's header and section table: magic, version, flags, sizes, section
    /// bounds, alignment, overlaps, duplicate or missing sections, the table checksum and the checksums of
    /// the metadata sections (cheap; the data section's is checked by `verifyChecksums` only).
    /// Returns the layout only when there are no issues.
    public static func checkFile(_ bytes: UnsafeRawBufferPointer) -> (layout: FileLayout?, issues: [FormatIssue]) {
        func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        func fatal(_ path: String, _ message: String, at offset: Int? = nil) -> (FileLayout?, [FormatIssue]) {
            (nil, [FormatIssue(.structure, path, message, fileOffset: offset)])
        }
        let size = bytes.count

        if size < FileLayout.headerSize, size > 0, Array(bytes[0..<min(size, 4)]) == Array(FileLayout.magic.prefix(min(size, 4))) {
            return fatal("header", "truncated: the file has \(size) bytes, the header needs \(FileLayout.headerSize)")
        }
        guard size >= 4, Array(bytes[0..<4]) == FileLayout.magic else {
            let found = bytes.prefix(4).map { hex2($0) }.joined(separator: " ")
            return fatal("header.magic", "not a .fmb file: expected 46 4D 42 00 (\"FMB\\0\"), found "
                         + (found.isEmpty ? "an empty file" : found), at: 0)
        }
        guard size >= FileLayout.headerSize else {
            return fatal("header", "truncated: the file has \(size) bytes, the header needs \(FileLayout.headerSize)")
        }
        let major = u16(4), minor = u16(6)
        guard major == FileLayout.currentMajor else {
            let needed = major > FileLayout.currentMajor
                ? "it needs a FlashMem runtime that reads format \(major).x (upgrade it, or compile the model again "
                  + "with this version's fmc)" : "it predates format \(FileLayout.currentMajor) (compile the model again)"
            return fatal("header.major", "format version \(major).\(minor) is not supported: \(needed); this reader "
                         + "reads \(FileLayout.currentMajor).0 to \(FileLayout.currentMajor).\(FileLayout.currentMinor) "
                         + "(and newer \(FileLayout.currentMajor).x files)", at: 4)
        }
        var issues: [FormatIssue] = []
        let flags = u32(8)
        let unknownFlags = flags & FileLayout.mustUnderstandFlags & ~FileLayout.knownFlags
        if unknownFlags != 0 {
            issues.append(FormatIssue(.structure, "header.flags", "unknown must-understand flags 0x"
                                      + hex(UInt64(unknownFlags)), fileOffset: 8))
        }
        let headerSize = u32(12)
        let fileSize = u64(16)
        let tableOffset = u64(24)
        let sectionCount = u32(32)
        let entrySize = u32(36)
        let tableChecksum = u64(40)
        let tagBytes = Array(bytes[48..<64]).prefix { $0 != 0 }
        let producerTag = String(decoding: tagBytes, as: UTF8.self)

        if headerSize < FileLayout.headerSize || UInt64(headerSize) > UInt64(size) {
            return fatal("header.headerSize", "\(headerSize) is not between \(FileLayout.headerSize) and the file "
                         + "size \(size)", at: 12)
        }
        if fileSize > UInt64(size) {
            return fatal("header.fileSize", "truncated: the header says \(fileSize) bytes, the file has \(size)",
                         at: 16)
        }
        if fileSize < UInt64(size) {
            issues.append(FormatIssue(.structure, "header.fileSize", "the header says \(fileSize) bytes, the file "
                                      + "has \(size) (\(UInt64(size) - fileSize) trailing bytes)", fileOffset: 16))
        }
        if entrySize < FileLayout.sectionEntrySize {
            return fatal("header.sectionEntrySize", "\(entrySize), expected at least \(FileLayout.sectionEntrySize)",
                         at: 36)
        }
        if tableOffset % UInt64(FileLayout.sectionAlignment) != 0 {
            issues.append(FormatIssue(.structure, "header.sectionTableOffset",
                                      "\(tableOffset) is not a multiple of \(FileLayout.sectionAlignment)", fileOffset: 24))
        }
        if tableOffset < UInt64(headerSize) {
            issues.append(FormatIssue(.structure, "header.sectionTableOffset",
                                      "\(tableOffset) overlaps the \(headerSize)-byte header", fileOffset: 24))
        }
        let tableBytes = UInt64(sectionCount) * UInt64(entrySize)
        guard let tableEnd = add(tableOffset, tableBytes), tableEnd <= UInt64(size) else {
            return fatal("header.sectionTableOffset", "section table (\(sectionCount) entries of \(entrySize) bytes "
                         + "at \(tableOffset)) extends past the end of the file (\(size) bytes)", at: 24)
        }
        if !issues.isEmpty { return (nil, issues) }
        let table = UnsafeRawBufferPointer(rebasing: bytes[Int(tableOffset)..<Int(tableEnd)])
        if Checksum.fm64(table) != tableChecksum {
            return (nil, [FormatIssue(.checksum, "header.sectionTableChecksum",
                                      "does not match the section table (corrupted file?)", fileOffset: 40)])
        }

        var entries: [SectionEntry] = []
        for i in 0..<Int(sectionCount) {
            let at = Int(tableOffset) + i * Int(entrySize)
            entries.append(SectionEntry(kind: SectionKind(rawValue: u32(at)), flags: u32(at + 4),
                                        offset: u64(at + 8), size: u64(at + 16), checksum: u64(at + 24)))
        }
        var inBounds: [Int] = []
        var seen: [SectionKind: Int] = [:]
        for (i, e) in entries.enumerated() {
            let path = "sections[\(i)]"
            let at = Int(tableOffset) + i * Int(entrySize)
            if !e.kind.isKnown {
                if minor <= FileLayout.currentMinor {
                    issues.append(FormatIssue(.structure, "\(path).kind", "unknown section kind \(e.kind.rawValue) in "
                                              + "a \(major).\(minor) bundle", fileOffset: at))
                }
            } else if let first = seen[e.kind] {
                issues.append(FormatIssue(.structure, "\(path).kind", "a second \(e.kind) section (first: "
                                          + "sections[\(first)])", fileOffset: at))
            } else {
                seen[e.kind] = i
            }
            let alignment = e.kind == .data ? FileLayout.dataAlignment : FileLayout.sectionAlignment
            if e.offset % UInt64(alignment) != 0 {
                issues.append(FormatIssue(.structure, "\(path).offset", "\(e.kind) section offset \(e.offset) is not "
                                          + "a multiple of \(alignment)", fileOffset: at + 8))
            }
            guard let end = add(e.offset, e.size), end <= fileSize else {
                issues.append(FormatIssue(.structure, "\(path).size", "\(e.kind) section (\(e.size) bytes at "
                                          + "\(e.offset)) extends past the end of the file (\(fileSize) bytes)",
                                          fileOffset: at + 16))
                continue
            }
            let overlapsHeader = e.offset < UInt64(headerSize)
            let overlapsTable = e.offset < tableEnd && end > tableOffset
            if e.size > 0, overlapsHeader || overlapsTable {
                issues.append(FormatIssue(.structure, "\(path).offset", "\(e.kind) section (\(e.offset)..<\(end)) "
                                          + "overlaps the " + (overlapsHeader ? "header" : "section table "
                                          + "(\(tableOffset)..<\(tableEnd))"), fileOffset: at + 8))
                continue
            }
            inBounds.append(i)
        }
        let sorted = inBounds.filter { entries[$0].size > 0 }.sorted { entries[$0].offset < entries[$1].offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where entries[a].offset + entries[a].size > entries[b].offset {
            issues.append(FormatIssue(.structure, "sections[\(b)]", "\(entries[b].kind) section at "
                                      + "\(entries[b].offset) overlaps sections[\(a)] (\(entries[a].kind), "
                                      + "\(entries[a].offset)..<\(entries[a].offset + entries[a].size))"))
        }
        for kind in SectionKind.v1 where seen[kind] == nil {
            issues.append(FormatIssue(.structure, "sections", "no \(kind) section"))
        }
        issues += checkPredicatesSection(flags: flags, minor: minor, at: seen[.predicates])
        issues += checkPlacementSection(flags: flags, minor: minor, at: seen[.placement])
        // Optional sections without a flag: each only in a file of the minor that added it or later.
        for (kind, what, since) in [(SectionKind.constantChecksums, "constant checksums", 3), (.checks, "run-time checks", 3),
                                    (.waits, "wait steps", 4)] {
            if let index = seen[kind], minor < since {
                issues.append(FormatIssue(.structure, "sections[\(index)].kind", "a \(kind) section in a "
                                          + "1.\(minor) bundle (\(what) are format 1.\(since))"))
            }
        }
        if !issues.isEmpty { return (nil, issues) }
        for (i, e) in entries.enumerated() where e.kind.isKnown && e.kind != .data {
            if Checksum.fm64(UnsafeRawBufferPointer(rebasing: bytes[e.range])) != e.checksum {
                issues.append(FormatIssue(.checksum, "sections[\(i)].checksum",
                                          "\(e.kind) section checksum mismatch (corrupted file?)",
                                          fileOffset: Int(e.offset)))
            }
        }
        if !issues.isEmpty { return (nil, issues) }
        let layout = FileLayout(major: major, minor: minor, flags: flags, headerSize: headerSize, fileSize: fileSize,
                                sectionTableOffset: tableOffset, sectionEntrySize: entrySize,
                                sectionTableChecksum: tableChecksum, producerTag: producerTag, sections: entries)
        return (layout, [])
    }

    /// An optional section comes with its must-understand flag and vice versa, and only in a file whose minor
    /// version has it: a reader that does not know the section then refuses the file instead of misreading it.
    /// `predicates` (1.1, flag 0x1): steps that run only on a condition. `placement` (1.2, flag 0x2): the device
    /// placement of the weights.
    static func checkFlaggedSection(_ kind: SectionKind, flag: UInt32, flagName: String, sinceMinor: UInt16,
                                    what: String, flags: UInt32, minor: UInt16, at index: Int?) -> [FormatIssue] {
        let flagged = flags & flag != 0
        let hex = "0x" + String(flag, radix: 16)
        if let index, minor < sinceMinor {
            return [FormatIssue(.structure, "sections[\(index)].kind", "a \(kind) section in a 1.\(minor) bundle "
                                + "(\(what) are format 1.\(sinceMinor))")]
        }
        if let index, !flagged {
            return [FormatIssue(.structure, "header.flags", "sections[\(index)] is a \(kind) section, but the "
                                + "\(flagName) flag (\(hex)) is not set", fileOffset: 8)]
        }
        if index == nil, flagged {
            return [FormatIssue(.structure, "header.flags", "the \(flagName) flag (\(hex)) is set, but there is no "
                                + "\(kind) section", fileOffset: 8)]
        }
        return []
    }

    /// `meta.requirements.features` is non-zero exactly when the deviceFeatures flag (0x4) is set, only in a 1.3
    /// or later file, and holds only bits this reader knows (a newer producer's feature could not be enabled).
    public static func checkDeviceFeatures(_ features: DeviceFeatures, flags: UInt32, minor: UInt16) -> [FormatIssue] {
        let flagged = flags & FileLayout.deviceFeaturesFlag != 0
        let path = "meta.requirements.features"
        if !features.isEmpty, minor < 3 {
            return [FormatIssue(.structure, path, "\(features) in a 1.\(minor) bundle (device features are format 1.3)")]
        }
        if !features.isEmpty, !flagged {
            return [FormatIssue(.structure, "header.flags", "\(path) is \(features), but the deviceFeatures flag (0x4) "
                                + "is not set", fileOffset: 8)]
        }
        if features.isEmpty, flagged {
            return [FormatIssue(.structure, "header.flags", "the deviceFeatures flag (0x4) is set, but \(path) is 0",
                                fileOffset: 8)]
        }
        if !features.isSubset(of: .known) {
            return [FormatIssue(.structure, path, "unknown device feature bits 0x"
                                + String(features.rawValue & ~DeviceFeatures.known.rawValue, radix: 16))]
        }
        return []
    }

    static func checkPredicatesSection(flags: UInt32, minor: UInt16, at index: Int?) -> [FormatIssue] {
        checkFlaggedSection(.predicates, flag: FileLayout.predicatedStepsFlag, flagName: "predicatedSteps",
                            sinceMinor: 1, what: "predicated steps", flags: flags, minor: minor, at: index)
    }

    static func checkPlacementSection(flags: UInt32, minor: UInt16, at index: Int?) -> [FormatIssue] {
        checkFlaggedSection(.placement, flag: FileLayout.placementFlag, flagName: "placement",
                            sinceMinor: 2, what: "weight placements", flags: flags, minor: minor, at: index)
    }

    // MARK: - Structure: payload ranges

    /// The structure checks that need decoded tables: every chunk payload and resident constant lies inside
    /// the data section, and chunk payloads start at multiples of 4096 (the data section itself starts at a
    /// multiple of 4096, so they are aligned in the file).
    public static func checkStructure(_ bundle: FMBundle, dataSize: UInt64) -> [FormatIssue] {
        var issues: [FormatIssue] = []
        func inside(_ range: DataRange, _ path: String) {
            if let end = add(range.offset, range.size), end <= dataSize { return }
            issues.append(FormatIssue(.structure, path, "range \(range.offset) + \(range.size) bytes is outside the "
                                      + "data section (\(dataSize) bytes)"))
        }
        for (t, tensor) in bundle.tensors.enumerated() {
            if let constant = tensor.constant { inside(constant, "tensors[\(t)].constant") }
        }
        for (c, chunk) in bundle.chunks.enumerated() {
            inside(chunk.payload, "chunks[\(c)].payload")
            if chunk.payload.offset % UInt64(PayloadBuilder.chunkAlignment) != 0 {
                issues.append(FormatIssue(.structure, "chunks[\(c)].payload.offset", "\(chunk.payload.offset) is not a "
                                          + "multiple of \(PayloadBuilder.chunkAlignment)"))
            }
        }
        return issues
    }

    // MARK: - Checksums

    /// Decodes every chunk payload of `data` (the data section) and checks its fm64 against the chunk's
    /// checksum. Run only on a bundle that passed `validate`. Reads all payload bytes.
    public static func verifyChecksums(_ bundle: FMBundle, data: UnsafeRawBufferPointer) -> [FormatIssue] {
        var issues: [FormatIssue] = []
        let largest = bundle.chunks.map { Int($0.rawSize) }.max() ?? 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(largest, 1), alignment: 64)
        defer { scratch.deallocate() }
        let zstd = ZstdDecompressor()
        for (c, chunk) in bundle.chunks.enumerated() {
            let stored = UnsafeRawBufferPointer(rebasing: data[Int(chunk.payload.offset)..<Int(chunk.payload.offset
                                                                                              + chunk.payload.size)])
            let raw = Int(chunk.rawSize)
            do {
                try zstd.decode(chunk: stored, codec: chunk.codec, rawSize: raw, into: scratch)
            } catch {
                issues.append(FormatIssue(.checksum, "chunks[\(c)].payload", "cannot be decoded: \(error)"))
                continue
            }
            let computed = Checksum.fm64(UnsafeRawBufferPointer(rebasing: scratch[0..<raw]))
            if computed != chunk.checksum {
                issues.append(FormatIssue(.checksum, "chunks[\(c)].checksum", "expected 0x\(hex(chunk.checksum)), "
                                          + "the decoded payload has 0x\(hex(computed)) (corrupted payload?)"))
            }
        }
        return issues
    }
}

// MARK: - Helpers

/// `a + b`, or nil on overflow (file values are untrusted).
@inline(__always) func add(_ a: UInt64, _ b: UInt64) -> UInt64? {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? nil : sum
}

/// `a * b`, or nil on overflow.
@inline(__always) func mul(_ a: UInt64, _ b: UInt64) -> UInt64? {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? nil : product
}

/// Upper-case hex, zero-padded to `digits`.
func hex(_ v: UInt64, digits: Int = 16) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, digits - s.count)) + s
}

func hex2(_ v: UInt8) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return s.count == 1 ? "0" + s : s
}
