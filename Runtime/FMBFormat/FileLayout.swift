// The outer layout of a `.fmb` file: header and section table (FORMAT.md "Header", "Section table").
// `BundleValidator.checkFile` parses and checks it; `BundleWriter` produces it; `BundleInspector` prints it.

/// A section's kind (u32 in the section table). Kinds this reader does not know are kept as raw values so a
/// newer-minor file can still be listed and its unknown sections skipped.
public struct SectionKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let meta = SectionKind(rawValue: 1)
    public static let kernels = SectionKind(rawValue: 2)
    public static let program = SectionKind(rawValue: 3)
    public static let tensors = SectionKind(rawValue: 4)
    public static let images = SectionKind(rawValue: 5)
    public static let chunks = SectionKind(rawValue: 6)
    public static let schedule = SectionKind(rawValue: 7)
    public static let data = SectionKind(rawValue: 8)
    /// Since 1.1, optional: the run-time conditions of predicated steps.
    public static let predicates = SectionKind(rawValue: 9)
    /// Since 1.2, optional: the device placement of every weight image (the load plan's memory half).
    public static let placement = SectionKind(rawValue: 10)
    /// Since 1.3, optional: the fm64 of every resident constant's bytes, so a runtime can check them as it
    /// uploads them (chunks carry their own checksums).
    public static let constantChecksums = SectionKind(rawValue: 11)
    /// Since 1.3, optional: conditions kernels check on the device (`FMBundle.checks`).
    public static let checks = SectionKind(rawValue: 12)
    /// Since 1.4, optional: per image, the step whose submission waits for its chunks (`Schedule.waitStep`).
    public static let waits = SectionKind(rawValue: 13)

    /// Every v1.0 section, in the order the writer lays them out. Each must appear exactly once.
    public static let v1: [SectionKind] = [.meta, .kernels, .program, .tensors, .images, .chunks, .schedule, .data]

    public var isKnown: Bool { (1...13).contains(rawValue) }

    public var description: String {
        switch rawValue {
        case 1: "meta"
        case 2: "kernels"
        case 3: "program"
        case 4: "tensors"
        case 5: "images"
        case 6: "chunks"
        case 7: "schedule"
        case 8: "data"
        case 9: "predicates"
        case 10: "placement"
        case 11: "constantChecksums"
        case 12: "checks"
        case 13: "waits"
        default: "unknown(\(rawValue))"
        }
    }
}

/// One entry of the section table.
public struct SectionEntry: Equatable, Sendable {
    public var kind: SectionKind
    /// Reserved, 0 in v1.
    public var flags: UInt32
    /// From the file start; a multiple of 8 (of 4096 for `data`).
    public var offset: UInt64
    public var size: UInt64
    /// `Checksum.fm64` of the section's bytes.
    public var checksum: UInt64

    public init(kind: SectionKind, flags: UInt32 = 0, offset: UInt64, size: UInt64, checksum: UInt64) {
        self.kind = kind
        self.flags = flags
        self.offset = offset
        self.size = size
        self.checksum = checksum
    }

    /// The section's bytes as a file range (only meaningful once the structure pass accepted the entry).
    public var range: Range<Int> { Int(offset)..<Int(offset + size) }
}

/// The header and section table of a bundle file.
public struct FileLayout: Equatable, Sendable {
    /// "FMB\0".
    public static let magic: [UInt8] = [0x46, 0x4D, 0x42, 0x00]
    /// The newest format version this code writes; it reads any 1.x. The writer stamps the lowest minor that
    /// holds the file (1.0 unless it has predicated steps), so bundles without them stay readable by 1.0 readers.
    public static let currentMajor: UInt16 = 1
    public static let currentMinor: UInt16 = 5
    /// Sizes of the v1.0 header and section entry; later minors may grow them (readers use the file's sizes).
    public static let headerSize = 64
    public static let sectionEntrySize = 32
    public static let producerTagSize = 16
    /// Every section starts at a multiple of this file offset…
    public static let sectionAlignment = 8
    /// …and the data section at a multiple of this one.
    public static let dataAlignment = 4096
    /// Header flag bits 0–15 must be understood by a reader (it rejects unknown ones); 16–31 may be ignored.
    public static let mustUnderstandFlags: UInt32 = 0x0000_FFFF
    /// Must-understand flag (1.1): some steps run only when a condition holds (`predicates` section). A 1.0
    /// reader rejects the file instead of running every step unconditionally.
    public static let predicatedStepsFlag: UInt32 = 0x0000_0001
    /// Must-understand flag (1.2): weight images live where the `placement` section says, some resident across
    /// runs. A 1.1 reader rejects the file instead of streaming every image into a pool of its own design.
    public static let placementFlag: UInt32 = 0x0000_0002
    /// Must-understand flag (1.3): `meta.requirements.features` (a reserved 0 before) names optional device
    /// features some kernel needs (e.g. cooperative matrices). A 1.2 reader rejects the file instead of creating
    /// pipelines its device may not run.
    public static let deviceFeaturesFlag: UInt32 = 0x0000_0004
    /// The must-understand flags this reader knows.
    public static let knownFlags: UInt32 = predicatedStepsFlag | placementFlag | deviceFeaturesFlag

    public var major: UInt16
    public var minor: UInt16
    public var flags: UInt32
    public var headerSize: UInt32
    public var fileSize: UInt64
    public var sectionTableOffset: UInt64
    public var sectionEntrySize: UInt32
    public var sectionTableChecksum: UInt64
    /// The header's short producer tag (informational; `Meta.producer` has the full text).
    public var producerTag: String
    public var sections: [SectionEntry]

    public init(major: UInt16, minor: UInt16, flags: UInt32, headerSize: UInt32, fileSize: UInt64,
                sectionTableOffset: UInt64, sectionEntrySize: UInt32, sectionTableChecksum: UInt64,
                producerTag: String, sections: [SectionEntry]) {
        self.major = major
        self.minor = minor
        self.flags = flags
        self.headerSize = headerSize
        self.fileSize = fileSize
        self.sectionTableOffset = sectionTableOffset
        self.sectionEntrySize = sectionEntrySize
        self.sectionTableChecksum = sectionTableChecksum
        self.producerTag = producerTag
        self.sections = sections
    }

    /// The (single) section of a kind.
    public func section(_ kind: SectionKind) -> SectionEntry? { sections.first { $0.kind == kind } }

    /// The data section as a file range (only meaningful once the structure pass accepted the layout).
    public var dataRange: Range<Int> { section(.data)?.range ?? 0..<0 }

    /// The header's producer tag for `producer`: its first 16 bytes, cut at a UTF-8 character boundary.
    static func producerTag(_ producer: String) -> [UInt8] {
        var tag: [UInt8] = []
        for scalar in producer.unicodeScalars {
            let utf8 = Array(String(scalar).utf8)
            if tag.count + utf8.count > producerTagSize { break }
            tag += utf8
        }
        return tag + [UInt8](repeating: 0, count: producerTagSize - tag.count)
    }
}
