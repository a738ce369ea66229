// The status codes of flashmem.h and the per-thread message behind fm_last_error(): one place maps the
// runtime's typed errors to a code a C caller can branch on.

import FlashMemRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `fm_status` in flashmem.h (a C enum, so `int` wide).
enum FMStatus: Int32 {
    case ok = 0
    case invalidArgument, bundle, device, outOfMemory, inputMismatch, runtime

    var name: StaticString {
        switch self {
        case .ok: "FM_OK"
        case .invalidArgument: "FM_ERROR_INVALID_ARGUMENT"
        case .bundle: "FM_ERROR_BUNDLE"
        case .device: "FM_ERROR_DEVICE"
        case .outOfMemory: "FM_ERROR_OUT_OF_MEMORY"
        case .inputMismatch: "FM_ERROR_INPUT_MISMATCH"
        case .runtime: "FM_ERROR_RUNTIME"
        }
    }
}

/// A failure detected by the C layer itself (bad pointers, indices, sizes).
struct CAPIError: Error, CustomStringConvertible {
    var status: FMStatus
    var description: String
}

/// The status for an error the runtime threw.
func status(of error: Error) -> FMStatus {
    switch error {
    case let error as CAPIError:
        return error.status
    case is FormatError, is FileError, is CodecError:
        return .bundle
    case let error as VulkanError:
        // VK_ERROR_OUT_OF_HOST_MEMORY, VK_ERROR_OUT_OF_DEVICE_MEMORY
        return error.result == -1 || error.result == -2 ? .outOfMemory : .device
    case let error as RuntimeError:
        switch error {
        case .vulkanTooOld, .noSuitableDevice, .deviceIndexOutOfRange, .requirementsUnmet, .validationUnavailable:
            return .device
        case .invalidBundle, .chunkDecode, .chunkChecksum, .constantChecksum, .bundleChanged: return .bundle
        case .memory, .exceedsContextBudget: return .outOfMemory
        case .inputMismatch, .checkFailed: return .inputMismatch
        }
    default:
        return .runtime
    }
}

// MARK: - fm_last_error

/// Each thread's last message, a malloc'd C string freed when replaced or when the thread exits.
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private func setLastError(_ message: String) {
    let old = pthread_getspecific(lastErrorKey)
    pthread_setspecific(lastErrorKey, strdup(message))
    free(old)
}

/// Records `error` as this thread's last failure and returns its status code.
func fail(_ error: Error) -> Int32 {
    setLastError("\(error)")
    return status(of: error).rawValue
}

/// Runs a fallible C entry point: FM_OK, or the failure's code with its message recorded.
func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return FMStatus.ok.rawValue
    } catch {
        return fail(error)
    }
}

@_cdecl("fm_last_error")
public func fm_last_error() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(lastErrorKey) {
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
    return emptyCString
}

private let emptyCString: UnsafePointer<CChar> = UnsafePointer(strdup("")!)

@_cdecl("fm_status_string")
public func fm_status_string(_ status: Int32) -> UnsafePointer<CChar> {
    guard let known = FMStatus(rawValue: status) else { return unknownStatusCString }
    return statusCStrings[Int(known.rawValue)]
}

/// Names as C strings made once and never freed, so callers may keep the pointers.
private let statusCStrings: [UnsafePointer<CChar>] = (0...FMStatus.runtime.rawValue).map {
    UnsafePointer(strdup("\(FMStatus(rawValue: $0)!.name)")!)
}
private let unknownStatusCString: UnsafePointer<CChar> = UnsafePointer(strdup("FM_STATUS_UNKNOWN")!)
