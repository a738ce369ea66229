import CVulkan
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Namespace of the RAII wrappers around Vulkan handles. One final class per owned Vulkan object:
/// `deinit` destroys it and every wrapper keeps its parent alive (an image holds its device), so
/// destruction order is always children first. Like IREE's handle wrappers, they do nothing beyond
/// handle management; policy lives in `Device` and `Session`. Not thread-safe unless noted.
enum VK {}

/// C strings kept alive for the duration of a Vulkan create call (`ppEnabledExtensionNames` and friends).
final class CStringArray {
    private(set) var pointers: [UnsafePointer<CChar>?]

    init(_ strings: [String]) {
        pointers = strings.map { UnsafePointer(strdup($0)) }
    }

    deinit {
        for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) }
    }

    var count: UInt32 { UInt32(pointers.count) }
}

/// The sharing of a buffer or image used by the queue `families` (duplicates allowed): concurrent across several,
/// else exclusive. `body` gets the mode and the family list for the create info (valid only during the call).
func withSharing<R>(_ families: [UInt32],
                    _ body: (VkSharingMode, UInt32, UnsafePointer<UInt32>?) -> R) -> R {
    let unique = Array(Set(families)).sorted()
    return unique.withUnsafeBufferPointer { pointer in
        unique.count > 1 ? body(VK_SHARING_MODE_CONCURRENT, UInt32(unique.count), pointer.baseAddress)
                         : body(VK_SHARING_MODE_EXCLUSIVE, 0, nil)
    }
}

/// Reads a fixed-size C char array (imported as a tuple), e.g. `VkPhysicalDeviceProperties.deviceName`.
func string<T>(fromCTuple tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[0..<end], as: UTF8.self)
    }
}

/// Reads a fixed-size C array (imported as a homogeneous tuple) into a Swift array.
func array<T, Element>(fromCTuple tuple: T, of: Element.Type, count: Int) -> [Element] {
    withUnsafeBytes(of: tuple) { raw in
        Array(raw.bindMemory(to: Element.self).prefix(count))
    }
}
