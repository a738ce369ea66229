// fm_bundle_* and fm_device_* of flashmem.h.

import FlashMemRuntime

// MARK: - Bundles

@_cdecl("fm_bundle_open")
public func fm_bundle_open(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let path, let out else { throw CAPIError(status: .invalidArgument, description: "fm_bundle_open: path and out must not be NULL") }
        out.pointee = nil
        out.pointee = retainHandle(BundleHandle(try openBundle(path: String(cString: path))))
    }
}

@_cdecl("fm_bundle_close")
public func fm_bundle_close(_ bundle: OpaquePointer?) {
    if let bundle { releaseHandle(bundle, as: BundleHandle.self) }
}

private func signature(_ bundle: OpaquePointer?, output: Bool, _ index: Int32) -> CSignature? {
    guard let bundle else { return nil }
    let handle = borrowHandle(bundle, as: BundleHandle.self)
    let list = output ? handle.outputs : handle.inputs
    return list.indices.contains(Int(index)) ? list[Int(index)] : nil
}

private func count(_ bundle: OpaquePointer?, output: Bool) -> Int32 {
    guard let bundle else { return -1 }
    let handle = borrowHandle(bundle, as: BundleHandle.self)
    return Int32(output ? handle.outputs.count : handle.inputs.count)
}

private func shape(_ signature: CSignature?, _ out: UnsafeMutablePointer<UnsafePointer<Int64>?>?) -> Int32 {
    guard let signature else { return -1 }
    out?.pointee = UnsafePointer(signature.shape.baseAddress)
    return Int32(signature.binding.shape.count)
}

@_cdecl("fm_bundle_input_count")
public func fm_bundle_input_count(_ bundle: OpaquePointer?) -> Int32 { count(bundle, output: false) }

@_cdecl("fm_bundle_output_count")
public func fm_bundle_output_count(_ bundle: OpaquePointer?) -> Int32 { count(bundle, output: true) }

@_cdecl("fm_bundle_input_name")
public func fm_bundle_input_name(_ bundle: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    signature(bundle, output: false, index).map { UnsafePointer($0.name) }
}

@_cdecl("fm_bundle_output_name")
public func fm_bundle_output_name(_ bundle: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    signature(bundle, output: true, index).map { UnsafePointer($0.name) }
}

@_cdecl("fm_bundle_input_dtype")
public func fm_bundle_input_dtype(_ bundle: OpaquePointer?, _ index: Int32) -> Int32 {
    signature(bundle, output: false, index).map { dtype($0.binding.elementType) } ?? 0
}

@_cdecl("fm_bundle_output_dtype")
public func fm_bundle_output_dtype(_ bundle: OpaquePointer?, _ index: Int32) -> Int32 {
    signature(bundle, output: true, index).map { dtype($0.binding.elementType) } ?? 0
}

@_cdecl("fm_bundle_input_shape")
public func fm_bundle_input_shape(_ bundle: OpaquePointer?, _ index: Int32,
                                  _ out: UnsafeMutablePointer<UnsafePointer<Int64>?>?) -> Int32 {
    shape(signature(bundle, output: false, index), out)
}

@_cdecl("fm_bundle_output_shape")
public func fm_bundle_output_shape(_ bundle: OpaquePointer?, _ index: Int32,
                                   _ out: UnsafeMutablePointer<UnsafePointer<Int64>?>?) -> Int32 {
    shape(signature(bundle, output: true, index), out)
}

@_cdecl("fm_dtype_size")
public func fm_dtype_size(_ dtype: Int32) -> Int {
    elementType(dtype)?.byteSize ?? 0
}

// MARK: - Devices

@_cdecl("fm_device_create")
public func fm_device_create(_ deviceIndex: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw CAPIError(status: .invalidArgument, description: "fm_device_create: out must not be NULL") }
        out.pointee = nil
        guard deviceIndex >= -1 else {
            throw CAPIError(status: .invalidArgument, description: "fm_device_create: device_index \(deviceIndex) (use -1 for the default device)")
        }
        let options = DeviceOptions(deviceIndex: deviceIndex < 0 ? nil : Int(deviceIndex))
        out.pointee = retainHandle(DeviceHandle(try Device(options: options)))
    }
}

@_cdecl("fm_device_destroy")
public func fm_device_destroy(_ device: OpaquePointer?) {
    if let device { releaseHandle(device, as: DeviceHandle.self) }
}
