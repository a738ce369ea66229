// fm_context_* of flashmem.h.

import FlashMemRuntime

@_cdecl("fm_context_create")
public func fm_context_create(_ device: OpaquePointer?, _ budgetBytes: UInt64,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let device, let out else {
            throw CAPIError(status: .invalidArgument, description: "fm_context_create: device and out must not be NULL")
        }
        out.pointee = nil
        let deviceHandle = borrowHandle(device, as: DeviceHandle.self)
        let context = DeviceContext(device: deviceHandle.device, budgetBytes: budgetBytes == 0 ? nil : budgetBytes)
        out.pointee = retainHandle(ContextHandle(context: context, device: deviceHandle))
    }
}

@_cdecl("fm_context_destroy")
public func fm_context_destroy(_ context: OpaquePointer?) {
    if let context { releaseHandle(context, as: ContextHandle.self) }
}

@_cdecl("fm_context_memory")
public func fm_context_memory(_ context: OpaquePointer?, _ used: UnsafeMutablePointer<UInt64>?,
                              _ peak: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded {
        guard let context else {
            throw CAPIError(status: .invalidArgument, description: "fm_context_memory: context must not be NULL")
        }
        let memory = borrowHandle(context, as: ContextHandle.self).context.memory
        used?.pointee = memory.usedBytes
        peak?.pointee = memory.peakBytes
    }
}
