/// A bundle opened for running: its parsed, validated sections plus a view of its data section.
/// Payload bytes are never copied: `data` points into the memory mapping that `file` keeps alive
/// (or into owned bytes for bundles built in memory, e.g. in tests).
public final class LoadedBundle: @unchecked Sendable {
    public let bundle: FMBundle
    /// The data section; `DataRange` offsets are relative to its start.
    public let data: UnsafeRawBufferPointer
    /// Where the bundle came from, for messages ("<memory>" when built in memory).
    public let path: String
    /// The mapping, when read from a file; nil for in-memory bundles.
    public let file: MappedFile?
    /// Per tensor, the fm64 of its resident constant's bytes (0 for other tensors), from a 1.3 file's
    /// `constantChecksums` section; nil for older files and bundles built in memory.
    public let constantChecksums: [UInt64]?
    private let owned: UnsafeMutableRawBufferPointer?
    /// Whether `BundleReader` made this bundle, after both validation passes (then `validate()` is free).
    let validatedByReader: Bool

    /// A bundle read from a mapped file; `data` must lie inside `file.bytes`.
    public convenience init(bundle: FMBundle, file: MappedFile, data: UnsafeRawBufferPointer,
                            constantChecksums: [UInt64]? = nil) {
        self.init(bundle: bundle, file: file, data: data, constantChecksums: constantChecksums, validated: false)
    }

    init(bundle: FMBundle, file: MappedFile, data: UnsafeRawBufferPointer, constantChecksums: [UInt64]?, validated: Bool) {
        self.validatedByReader = validated
        self.bundle = bundle
        self.constantChecksums = constantChecksums
        self.data = data
        self.path = file.path
        self.file = file
        self.owned = nil
    }

    /// A bundle built in memory; the payload is copied once into 4096-aligned storage.
    public convenience init(bundle: FMBundle, payload: [UInt8], path: String = "<memory>",
                            constantChecksums: [UInt64]? = nil) {
        self.init(bundle: bundle, payload: payload, path: path, constantChecksums: constantChecksums, validated: false)
    }

    init(bundle: FMBundle, payload: [UInt8], path: String, constantChecksums: [UInt64]?, validated: Bool) {
        self.validatedByReader = validated
        self.constantChecksums = constantChecksums
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(payload.count, 1), alignment: 4096)
        payload.withUnsafeBytes { storage.copyMemory(from: $0) }
        self.bundle = bundle
        self.data = UnsafeRawBufferPointer(rebasing: storage[0..<payload.count])
        self.path = path
        self.file = nil
        self.owned = storage
    }

    deinit { owned?.deallocate() }

    /// The one validation every bundle passes before a runtime uses it (FORMAT.md "Validation"): both passes of
    /// `BundleValidator` against this data section. Free for bundles `BundleReader` made (it already ran them);
    /// bundles built in memory are checked now. Throws `FormatError` naming `path` and every problem found.
    public func validate() throws {
        if validatedByReader { return }
        let issues = BundleValidator.validate(bundle, dataSize: UInt64(data.count))
        if !issues.isEmpty { throw FormatError(file: path, issues: issues) }
    }

    /// The bytes of a range of the data section.
    public func bytes(_ range: DataRange) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: data[Int(range.offset)..<Int(range.offset + range.size)])
    }
}
