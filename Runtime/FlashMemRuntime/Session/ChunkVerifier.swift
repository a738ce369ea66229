/// Checks weight chunks against their fm64 checksums (`Chunk.checksum`, of the decoded bytes) as the streamer
/// decodes them, so a corrupted or modified bundle is a `RuntimeError.chunkChecksum` naming the chunk and its
/// image before any copy of that chunk is submitted, instead of plausible but wrong outputs. On by default
/// (`SessionOptions.verifyChunks`); a chunk is checked once per session: runs after the one that checked it
/// skip it, so warm runs pay nothing.
///
/// Where the hash reads: an uncompressed chunk memcpy'd from the mapping is hashed in the mapping (the bytes
/// the copy reads, in cached memory, and in parallel with the copy); a zstd chunk, or one pread into the ring,
/// is hashed in its staging slot after it is decoded. (The ring may be write-combined memory, slow to read back:
/// zstd and pread bundles pay more than the default uncompressed + mmap path.)
///
/// Shared by a session's programs, used by one streamer at a time. `check` is thread-safe for distinct chunks
/// (each writes only its own flag); `needsCheck` is read on the streamer thread between waves.
final class ChunkVerifier {
    private let loaded: LoadedBundle
    /// Per chunk index: whether its bytes matched its checksum.
    private let verified: UnsafeMutableBufferPointer<Bool>

    init(loaded: LoadedBundle) {
        self.loaded = loaded
        verified = .allocate(capacity: max(loaded.bundle.chunks.count, 1))
        verified.initialize(repeating: false)
    }

    deinit { verified.deallocate() }

    /// Whether chunk `index` still has to be checked.
    func needsCheck(_ index: Int) -> Bool { !verified[index] }

    /// How many chunks have been checked and matched.
    var verifiedCount: Int { verified.prefix(loaded.bundle.chunks.count).filter { $0 }.count }

    /// Whether chunk `index` is hashed in the mapping (true) or in its staging slot after decoding (false).
    func hashesMapping(_ index: Int, hostRead: HostRead) -> Bool {
        loaded.bundle.chunks[index].codec == .none && (hostRead == .mmap || loaded.file == nil)
    }

    /// Checks chunk `index`'s decoded bytes (`bytes`: its payload in the mapping, or its filled staging slot).
    func check(_ index: Int, decoded bytes: UnsafeRawBufferPointer) throws {
        let chunk = loaded.bundle.chunks[index]
        let found = Checksum.fm64(bytes)
        guard found == chunk.checksum else {
            let image = loaded.bundle.images[Int(chunk.image)]
            throw RuntimeError.chunkChecksum(path: loaded.path, chunk: index, image: image.name, layer: chunk.layer,
                                             rows: Int(chunk.y)..<(Int(chunk.y) + Int(chunk.rows)),
                                             expected: chunk.checksum, found: found)
        }
        verified[index] = true
    }
}
