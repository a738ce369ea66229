import FMBFormat
#if canImport(Glibc)
import Glibc
#endif

/// Where a session keeps compiled pipelines between processes: one file per (bundle kernels, device, driver) in
/// a user cache folder, so a second process start does not compile the bundle's kernels again.
///
/// The key hashes every SPIR-V module, kernel and specialization constant of the bundle, with the device's
/// vendor and device IDs, driver version and pipelineCacheUUID. Files are written through a temporary file and
/// renamed; a missing, unreadable or foreign file only means a cold compile (drivers check the data themselves).
struct PipelineCacheFile {
    let path: String

    /// `directory`, else $FLASHMEM_CACHE_DIR, else $XDG_CACHE_HOME/flashmem, else $HOME/.cache/flashmem; nil
    /// when none can be made.
    init?(bundle: FMBundle, device: Device, directory: String?) {
        let env = { (name: String) -> String? in getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        guard let folder = directory ?? env("FLASHMEM_CACHE_DIR") ?? env("XDG_CACHE_HOME").map({ $0 + "/flashmem" })
                ?? env("HOME").map({ $0 + "/.cache/flashmem" }) else { return nil }
        var key: [UInt8] = []
        func add(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { key += $0 } }
        for module in bundle.spirv { module.withUnsafeBytes { key += $0 } }
        for kernel in bundle.kernels {
            add(kernel.spirv)
            kernel.specConstants.forEach(add)
            kernel.workgroupSize.forEach(add)
        }
        let properties = device.physical.properties
        add(properties.vendorID)
        add(properties.deviceID)
        add(properties.driverVersion)
        withUnsafeBytes(of: properties.pipelineCacheUUID) { key += $0 }
        let hash = String(Checksum.fm64(key), radix: 16)
        for part in PipelineCacheFile.prefixes(folder) where mkdir(part, 0o755) != 0 && errno != EEXIST {
            return nil
        }
        path = "\(folder)/\(bundle.meta.modelName.filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" })-\(hash).vkcache"
    }

    /// Every ancestor folder of `folder`, outermost first ("/a", "/a/b", ...).
    static func prefixes(_ folder: String) -> [String] {
        var result: [String] = []
        var current = ""
        for part in folder.split(separator: "/") {
            current += "/" + part
            result.append(folder.hasPrefix("/") ? current : String(current.dropFirst()))
        }
        return result
    }

    func load() -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes.isEmpty ? nil : bytes
    }

    /// Best effort: a cache that cannot be written is not an error.
    func save(_ bytes: [UInt8]) {
        let temp = "\(path).tmp-\(getpid())"
        guard let file = fopen(temp, "wb") else { return }
        let written = fwrite(bytes, 1, bytes.count, file)
        fclose(file)
        if written == bytes.count { rename(temp, path) } else { unlink(temp) }
    }
}
