// fm_session_* of flashmem.h.

import FlashMemRuntime

@_cdecl("fm_session_create")
public func fm_session_create(_ bundle: OpaquePointer?, _ device: OpaquePointer?, _ flags: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let bundle, let device, let out else {
            throw CAPIError(status: .invalidArgument, description: "fm_session_create: bundle, device and out must not be NULL")
        }
        out.pointee = nil
        let options = try sessionOptions(flags, call: "fm_session_create")
        let bundleHandle = borrowHandle(bundle, as: BundleHandle.self)
        let deviceHandle = borrowHandle(device, as: DeviceHandle.self)
        let session = try deviceHandle.exclusive {
            try Session(bundle: bundleHandle.loaded, device: deviceHandle.device, options: options)
        }
        out.pointee = retainHandle(SessionHandle(session: session, bundle: bundleHandle, device: deviceHandle))
    }
}

@_cdecl("fm_session_create_in_context")
public func fm_session_create_in_context(_ bundle: OpaquePointer?, _ context: OpaquePointer?, _ flags: Int32,
                                         _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let bundle, let context, let out else {
            throw CAPIError(status: .invalidArgument,
                            description: "fm_session_create_in_context: bundle, context and out must not be NULL")
        }
        out.pointee = nil
        let options = try sessionOptions(flags, call: "fm_session_create_in_context")
        let bundleHandle = borrowHandle(bundle, as: BundleHandle.self)
        let contextHandle = borrowHandle(context, as: ContextHandle.self)
        let session = try contextHandle.device.exclusive {
            try Session(bundle: bundleHandle.loaded, context: contextHandle.context, options: options)
        }
        out.pointee = retainHandle(SessionHandle(session: session, bundle: bundleHandle, device: contextHandle.device,
                                                 context: contextHandle))
    }
}

private func sessionOptions(_ flags: Int32, call: String) throws -> SessionOptions {
    guard flags & ~(sessionPreload | sessionTrustBundle) == 0 else {
        throw CAPIError(status: .invalidArgument, description: "\(call): unknown flags 0x"
                        + String(flags & ~(sessionPreload | sessionTrustBundle), radix: 16)
                        + " (known: FM_SESSION_PRELOAD 0x1, FM_SESSION_TRUST_BUNDLE 0x2)")
    }
    var options = SessionOptions(loadMode: flags & sessionPreload != 0 ? .preload : .streaming)
    options.verifyChunks = flags & sessionTrustBundle == 0
    return options
}

/// FM_SESSION_PRELOAD and FM_SESSION_TRUST_BUNDLE of flashmem.h.
private let sessionPreload: Int32 = 1
private let sessionTrustBundle: Int32 = 2

@_cdecl("fm_session_destroy")
public func fm_session_destroy(_ session: OpaquePointer?) {
    guard let session else { return }
    // The session's teardown waits for its own work and gives its memory back to its context; under the device's
    // lock, as its runs are. The device handle is kept past the unlock, in case this session held its last reference.
    let device = borrowHandle(session, as: SessionHandle.self).device
    device.exclusive { releaseHandle(session, as: SessionHandle.self) }
}

@_cdecl("fm_session_set_input")
public func fm_session_set_input(_ session: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ dtype: Int32,
                                 _ shape: UnsafePointer<Int64>?, _ rank: Int32,
                                 _ data: UnsafeRawPointer?, _ bytes: Int) -> Int32 {
    guarded {
        func invalid(_ reason: String) -> CAPIError {
            CAPIError(status: .invalidArgument, description: "fm_session_set_input: \(reason)")
        }
        guard let session, let name else { throw invalid("session and name must not be NULL") }
        guard let type = elementType(dtype) else { throw invalid("dtype \(dtype) is not an fm_dtype") }
        guard (0...maxRank).contains(rank), rank == 0 || shape != nil else {
            throw invalid("rank \(rank): expected 0...\(maxRank), with a shape of that many dimensions")
        }
        let dims = (0..<Int(rank)).map { Int(shape![$0]) }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw invalid("shape \(dims) has a negative dimension") }
        // A caller's absurd shape must be an error, not an overflow trap that ends the host process.
        guard let expected = byteCount(dims, type) else { throw invalid("shape \(dims) of \(type) overflows a size_t") }
        guard bytes == expected else {
            throw invalid("\(bytes) bytes given; shape \(dims) of \(type) is \(expected) bytes")
        }
        guard bytes == 0 || data != nil else { throw invalid("data must not be NULL") }
        let handle = borrowHandle(session, as: SessionHandle.self)
        let inputName = String(cString: name)
        guard handle.bundle.inputs.contains(where: { $0.binding.name == inputName }) else {
            throw CAPIError(status: .inputMismatch, description: "fm_session_set_input: the model has no input '\(inputName)'; its inputs: "
                            + handle.bundle.inputs.map { $0.binding.name }.joined(separator: ", "))
        }
        let copy = bytes == 0 ? [] : Array(UnsafeRawBufferPointer(start: data, count: bytes))
        handle.inputs[inputName] = HostTensor(name: inputName, elementType: type, shape: dims, bytes: copy)
    }
}

/// More dimensions than any bundle's tensor has; it bounds how far `shape` is read.
private let maxRank: Int32 = 64

private func byteCount(_ dims: [Int], _ type: ElementType) -> Int? {
    var total = type.byteSize
    for dim in dims {
        let (product, overflow) = total.multipliedReportingOverflow(by: dim)
        if overflow { return nil }
        total = product
    }
    return total
}

@_cdecl("fm_session_run")
public func fm_session_run(_ session: OpaquePointer?) -> Int32 {
    guarded {
        guard let session else { throw CAPIError(status: .invalidArgument, description: "fm_session_run: session must not be NULL") }
        let handle = borrowHandle(session, as: SessionHandle.self)
        let missing = handle.bundle.inputs.map { $0.binding.name }.filter { handle.inputs[$0] == nil }
        guard missing.isEmpty else {
            throw CAPIError(status: .inputMismatch, description: "fm_session_run: inputs not set: " + missing.joined(separator: ", "))
        }
        // The previous outputs' pointers end here, as flashmem.h says.
        handle.outputs = []
        let inputs = handle.bundle.inputs.map { handle.inputs[$0.binding.name]! }
        let results = try handle.device.exclusive { try handle.session.run(inputs: inputs) }
        handle.outputs = results.map(COutput.init)
    }
}

@_cdecl("fm_session_output")
public func fm_session_output(_ session: OpaquePointer?, _ index: Int32,
                              _ data: UnsafeMutablePointer<UnsafeRawPointer?>?, _ bytes: UnsafeMutablePointer<Int>?,
                              _ shape: UnsafeMutablePointer<UnsafePointer<Int64>?>?, _ rank: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        guard let session else { throw CAPIError(status: .invalidArgument, description: "fm_session_output: session must not be NULL") }
        let handle = borrowHandle(session, as: SessionHandle.self)
        guard handle.outputs.indices.contains(Int(index)) else {
            throw CAPIError(status: .invalidArgument, description: handle.outputs.isEmpty
                            ? "fm_session_output: no successful run yet"
                            : "fm_session_output: index \(index) out of range (\(handle.outputs.count) outputs)")
        }
        let output = handle.outputs[Int(index)]
        data?.pointee = UnsafeRawPointer(output.data.baseAddress)
        bytes?.pointee = output.byteCount
        shape?.pointee = UnsafePointer(output.shape.baseAddress)
        rank?.pointee = Int32(output.rank)
    }
}

@_cdecl("fm_session_output_dtype")
public func fm_session_output_dtype(_ session: OpaquePointer?, _ index: Int32) -> Int32 {
    guard let session else { return 0 }
    let handle = borrowHandle(session, as: SessionHandle.self)
    guard handle.outputs.indices.contains(Int(index)) else { return 0 }
    return dtype(handle.outputs[Int(index)].elementType)
}
