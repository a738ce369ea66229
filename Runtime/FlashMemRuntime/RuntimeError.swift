/// Errors of the runtime a user can act on. Vulkan call failures are `VulkanError`; bundle bytes
/// that do not parse are the reader's errors; these are what remains: the wrong device, a bundle
/// whose contents cannot run, inputs that do not match the model.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    /// The loader or a device offers an API version below 1.2 (timeline semaphores are required).
    case vulkanTooOld(what: String, version: String)
    /// No Vulkan device at all, or none with Vulkan 1.2, a compute queue and timeline semaphores.
    case noSuitableDevice(reasons: [String])
    /// `--device N` out of range; lists what exists.
    case deviceIndexOutOfRange(index: Int, available: [String])
    /// The chosen device cannot run this bundle; `unmet` lists each limit, e.g.
    /// "maxPushConstantsSize: bundle needs 256, device has 128".
    case requirementsUnmet(device: String, bundle: String, unmet: [String])
    /// The bundle's contents are inconsistent in a way the runtime cannot run, e.g. a step binds a
    /// tensor out of range; `field` is a path such as "program[3].bindings[1]".
    case invalidBundle(path: String, field: String, reason: String)
    /// No memory type / allocation fits, e.g. the weight pool is larger than maxMemoryAllocationSize.
    case memory(what: String, reason: String)
    /// A session's own plan needs more device memory than its `DeviceContext`'s whole budget: arena + weight space
    /// (as this device sizes them) = `neededBytes`.
    case exceedsContextBudget(path: String, neededBytes: UInt64, arenaBytes: UInt64, weightBytes: UInt64,
                              budgetBytes: UInt64)
    /// Inputs given to `Session.run` do not match the model's signature.
    case inputMismatch(reason: String, expected: [String])
    /// A chunk payload could not be decoded.
    case chunkDecode(path: String, chunk: Int, reason: String)
    /// A chunk's decoded bytes do not match its checksum (a corrupted or modified bundle); found by the streamer
    /// before any copy of the chunk was submitted. `image` is the weight image it fills, `layer` and `rows` where.
    case chunkChecksum(path: String, chunk: Int, image: String, layer: UInt32, rows: Range<Int>, expected: UInt64,
                       found: UInt64)

    /// A condition a kernel checks on the device failed during the run (`FMBundle.checks`), e.g. a Gather index
    /// past the table (a token id past the vocabulary); `node` names the model node. The run's outputs are not given.
    case checkFailed(path: String, node: String, reason: String)
    /// A resident constant's bytes do not match the bundle's checksum of them (format 1.3); found before upload.
    case constantChecksum(path: String, tensor: Int, name: String, expected: UInt64, found: UInt64)
    /// The bundle file was changed on disk (written, truncated or replaced in place) after it was mapped; the
    /// session refuses to read the mapping again (a truncated mapping would fault). `reason` says what changed.
    case bundleChanged(path: String, reason: String)
    /// `FLASHMEM_VALIDATION` asks for the Khronos validation layer, which is not installed.
    case validationUnavailable(reason: String)

    public var description: String {
        switch self {
        case let .vulkanTooOld(what, version):
            return "\(what) supports Vulkan \(version); FlashMem needs 1.2 or later (timeline semaphores)"
        case let .noSuitableDevice(reasons):
            return "no suitable Vulkan device" + (reasons.isEmpty ? "" : ":\n  " + reasons.joined(separator: "\n  "))
        case let .deviceIndexOutOfRange(index, available):
            let list = available.isEmpty ? " (no Vulkan devices found)" : ":\n  " + available.joined(separator: "\n  ")
            return "device index \(index) is out of range; available devices\(list)"
        case let .requirementsUnmet(device, bundle, unmet):
            return "\(bundle) cannot run on \(device):\n  " + unmet.joined(separator: "\n  ")
        case let .invalidBundle(path, field, reason):
            return "\(path): \(field): \(reason)"
        case let .memory(what, reason):
            return "\(what): \(reason)"
        case let .exceedsContextBudget(path, needed, arena, weights, budget):
            return "\(path): needs \(needed) bytes of device memory (arena \(arena) + weights \(weights)), but the "
                + "context's whole budget is \(budget) bytes (\(needed - budget) short); give the context a larger "
                + "budget, or compile the model for a smaller one (fmc replan --memory-budget)"
        case let .inputMismatch(reason, expected):
            return reason + "\nexpected inputs:\n  " + expected.joined(separator: "\n  ")
        case let .chunkDecode(path, chunk, reason):
            return "\(path): chunks[\(chunk)]: \(reason)"
        case let .checkFailed(path, node, reason):
            return "\(path): \(node): \(reason)"
        case let .constantChecksum(path, tensor, name, expected, found):
            return "\(path): tensors[\(tensor)] (constant '\(name)'): checksum mismatch: expected 0x\(hex64(expected)), "
                + "the bytes have 0x\(hex64(found)); the bundle is corrupted or was modified"
        case let .bundleChanged(path, reason):
            return "\(path): the file changed on disk since it was opened (\(reason)); open it again"
        case let .validationUnavailable(reason):
            return reason
        case let .chunkChecksum(path, chunk, image, layer, rows, expected, found):
            return "\(path): chunks[\(chunk)] (weight image '\(image)', layer \(layer), rows \(rows.lowerBound)..<"
                + "\(rows.upperBound)): checksum mismatch: expected 0x\(hex64(expected)), the bytes have "
                + "0x\(hex64(found)); the bundle is corrupted or was modified (the chunk was not copied to the device)"
        }
    }
}

/// Upper-case, zero-padded 16-digit hex.
func hex64(_ value: UInt64) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}
