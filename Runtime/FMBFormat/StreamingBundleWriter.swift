// Writes a bundle whose data section is produced piece by piece (the compiler packs one weight at a time), so
// no copy of the data section is ever held in memory. The layout is exactly `BundleWriter`'s: header, section
// table, sections, then the data section at a 4096-aligned offset; only the order of writing differs.
//
// The payloads go first, at offset 0 of a temporary file in the target's directory. At `finish` the tables are
// known: their bytes (a multiple of 4096 long, since the data section starts 4096-aligned) are put in front of
// the payload by `fallocate(FALLOC_FL_INSERT_RANGE)` where the file system supports it (ext4, XFS: no data
// moves), else by copying the payload behind them into a second temporary file. Then `fsync` and `rename` over
// the target, so a failed or interrupted compile never leaves a partial bundle at the target path.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The temporary file a `StreamingBundleWriter` appends payloads to. Owned by the writer; not thread-safe.
final class PayloadFile: @unchecked Sendable {
    let path: String
    fileprivate(set) var descriptor: Int32
    /// The first failed write; later appends are skipped, `StreamingBundleWriter.finish` throws it.
    fileprivate(set) var failure: FileError?

    fileprivate init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Appends `bytes` and hashes them into `hasher`.
    func append(_ bytes: UnsafeRawBufferPointer, hashingInto hasher: inout Checksum.Hasher) {
        hasher.update(bytes)
        guard failure == nil else { return }
        do {
            try FileIO.writeAll(descriptor, bytes, path: path)
        } catch let error as FileError {
            failure = error
        } catch {
            failure = FileError(path: path, call: "write", errno: EIO)
        }
    }
}

/// A bundle written as its data section is built. Create it, build the data section with `payload` (chunks
/// and constants, in the same order as for `BundleWriter`), then `finish` with the tables; or `abandon`
/// (also what deinit does when `finish` was not reached), which removes the temporary file.
public final class StreamingBundleWriter {
    /// The bundle's final path.
    public let path: String
    private let file: PayloadFile
    private var closed = false
    /// Whether `finish` may shift the payload in place (FALLOC_FL_INSERT_RANGE); tests turn it off to check the
    /// copying path the other file systems take.
    var shiftsInPlace = true

    /// Creates the temporary file beside `path` (`<path>.tmp-<pid>-<random>`). Throws `FileError`.
    public init(path: String) throws {
        self.path = path
        let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_RDWR | O_CREAT | O_EXCL | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FileError(path: temp, call: "open", errno: errno) }
        file = PayloadFile(path: temp, descriptor: fd)
    }

    deinit { abandon() }

    /// A payload builder whose data section goes to this bundle's file. Use one builder per writer.
    public func payloadBuilder(zstdLevel: Int32 = 3, minimumSavings: Double = 0) -> PayloadBuilder {
        PayloadBuilder(file: file, zstdLevel: zstdLevel, minimumSavings: minimumSavings)
    }

    /// Writes the tables of `bundle` in front of the data section `payload` built, syncs and renames the file to
    /// `path`. With `validate` the bundle must pass both validation passes (against the data section's size),
    /// else this throws `FormatError` and nothing is written at `path`. Throws `FileError` for I/O, including
    /// any write that failed while the payload was built.
    public func finish(_ bundle: FMBundle, payload: PayloadBuilder, validate: Bool = true) throws {
        precondition(payload.file === file, "the payload was not built on this writer")
        precondition(!closed, "the writer was finished or abandoned")
        do {
            if let failure = file.failure { throw failure }
            let descriptor = file.descriptor, tempPath = file.path, dataSize = UInt64(payload.count)
            // Constants are small: read back from the data section written so far.
            let head = try BundleWriter.prefix(bundle, dataSize: dataSize, dataChecksum: payload.hasher.finalize(),
                                               constantChecksum: { offset, size in
                guard let end = add(offset, size), end <= dataSize else { return nil }
                var bytes = [UInt8](repeating: 0, count: Int(size))
                try bytes.withUnsafeMutableBytes { try FileIO.readAll(descriptor, $0, at: Int(offset), path: tempPath) }
                return bytes.withUnsafeBytes { Checksum.fm64($0) }
            }, validate: validate)
            precondition(head.count % FileLayout.dataAlignment == 0, "the data section starts 4096-aligned")
            if payload.count == 0 || (shiftsInPlace && insertRange(file.descriptor, count: head.count)) {
                try head.withUnsafeBytes { try FileIO.writeAll(file.descriptor, $0, at: 0, path: file.path) }
            } else {
                try copyBehind(head, payloadBytes: payload.count)
            }
            guard fsync(file.descriptor) == 0 else { throw FileError(path: file.path, call: "fsync", errno: errno) }
            let fd = file.descriptor
            file.descriptor = -1
            guard close(fd) == 0 else { throw FileError(path: file.path, call: "close", errno: errno) }
            guard rename(file.path, path) == 0 else { throw FileError(path: path, call: "rename", errno: errno) }
            closed = true
        } catch {
            abandon()
            throw error
        }
    }

    /// Closes and removes the temporary file (nothing is written at `path`). Safe to call more than once.
    public func abandon() {
        guard !closed else { return }
        closed = true
        if file.descriptor >= 0 { close(file.descriptor) }
        file.descriptor = -1
        unlink(file.path)
    }

    // MARK: - Putting the tables in front

    /// `fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, count)`: shifts the whole file up by `count` bytes without
    /// moving data (the file system relinks its extents). false where unsupported (the call is looked up at run
    /// time: Swift's Glibc module does not declare it; other file systems answer EOPNOTSUPP, and EINVAL when
    /// `count` is not a multiple of their block size).
    private func insertRange(_ fd: Int32, count: Int) -> Bool {
        #if os(Linux)
        typealias Fallocate = @convention(c) (Int32, Int32, Int, Int) -> Int32
        let insertRangeMode: Int32 = 0x20  // FALLOC_FL_INSERT_RANGE, linux/falloc.h
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return false }
        let fallocate = unsafeBitCast(symbol, to: Fallocate.self)
        return fallocate(fd, insertRangeMode, 0, count) == 0
        #else
        return false
        #endif
    }

    /// Writes `head` into a second temporary file, copies the payload behind it (8 MiB at a time), and makes that
    /// file the writer's.
    private func copyBehind(_ head: [UInt8], payloadBytes: Int) throws {
        let temp = "\(file.path).2"
        let fd = open(temp, O_RDWR | O_CREAT | O_EXCL | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FileError(path: temp, call: "open", errno: errno) }
        do {
            try head.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: temp) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 4096)
            defer { buffer.deallocate() }
            var done = 0
            while done < payloadBytes {
                let n = pread(file.descriptor, buffer.baseAddress, min(buffer.count, payloadBytes - done), off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FileError(path: file.path, call: "pread", errno: n == 0 ? EIO : errno) }
                try FileIO.writeAll(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), path: temp)
                done += n
            }
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        close(file.descriptor)
        unlink(file.path)
        guard rename(temp, file.path) == 0 else {
            close(fd)
            unlink(temp)
            throw FileError(path: file.path, call: "rename", errno: errno)
        }
        file.descriptor = fd
    }
}

extension StreamingBundleWriter {
    /// Writes `bundle` with the data section of `source` unchanged (`fmc replan`: a new plan beside an existing
    /// payload). A mapped source is read 8 MiB at a time with pread, so its pages never enter this process and
    /// memory stays flat however large the bundle. Throws like `finish`.
    public static func write(_ bundle: FMBundle, dataOf source: LoadedBundle, to path: String) throws {
        let writer = try StreamingBundleWriter(path: path)
        var payload = writer.payloadBuilder()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var offset = 0
        while offset < source.data.count {
            let n = min(buffer.count, source.data.count - offset)
            let piece = UnsafeRawBufferPointer(rebasing: source.data[offset..<(offset + n)])
            if let file = source.file {
                try file.read(piece, into: buffer.baseAddress!)
                payload.appendVerbatim(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            } else {
                payload.appendVerbatim(piece)
            }
            offset += n
        }
        try writer.finish(bundle, payload: payload)
    }
}

/// write(2) and pwrite(2) loops shared by the bundle writers (and the compiler's derived constants).
public enum FileIO {
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < buffer.count {
            let n = systemWrite(fd, buffer.baseAddress! + done, min(buffer.count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, call: "write", errno: errno)
            }
            done += n
        }
    }

    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, min(buffer.count - done, 1 << 30), off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, call: "pwrite", errno: errno)
            }
            done += n
        }
    }

    static func readAll(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FileError(path: path, call: "pread", errno: n == 0 ? EIO : errno) }
            done += n
        }
    }

    /// `write(2)` (a static `write` of a type would shadow it).
    private static func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        write(fd, buffer, count)
    }
}
