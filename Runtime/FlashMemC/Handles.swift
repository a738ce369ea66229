// The objects behind flashmem.h's opaque handles. A handle is an `Unmanaged` retain of one of these
// classes; close/destroy releases it, so a session that holds its bundle and device keeps them alive.

import FlashMemRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A C-owned handle for `object`: one retain, released by `release(_:)`.
func retainHandle<T: AnyObject>(_ object: T) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

func borrowHandle<T: AnyObject>(_ handle: OpaquePointer, as _: T.Type) -> T {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

func releaseHandle<T: AnyObject>(_ handle: OpaquePointer, as _: T.Type) {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
}

/// An input or output of the model as C sees it: a name and dimensions that live as long as the bundle.
final class CSignature {
    let binding: IOBinding
    let name: UnsafeMutablePointer<CChar>
    let shape: UnsafeMutableBufferPointer<Int64>

    init(_ binding: IOBinding) {
        self.binding = binding
        name = strdup(binding.name)!
        shape = .allocate(capacity: max(binding.shape.count, 1))
        _ = shape.initialize(from: binding.shape)
    }

    deinit {
        free(name)
        shape.deallocate()
    }
}

/// `fm_bundle`: an open, validated bundle and its signature in C form.
final class BundleHandle {
    let loaded: LoadedBundle
    let inputs: [CSignature]
    let outputs: [CSignature]

    init(_ loaded: LoadedBundle) {
        self.loaded = loaded
        inputs = loaded.bundle.meta.inputs.map(CSignature.init)
        outputs = loaded.bundle.meta.outputs.map(CSignature.init)
    }
}

/// `fm_device`, with the lock that makes its sessions take turns (creation, runs, destruction), as flashmem.h
/// promises. The runtime's `Device` locks its queues itself; this keeps C callers' runs one at a time per device.
final class DeviceHandle {
    let device: Device
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ device: Device) {
        self.device = device
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` while no other session of this device creates, runs or is destroyed.
    func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// `fm_context`: a memory budget over one device's sessions; runs still take turns through the device's lock.
final class ContextHandle {
    let context: DeviceContext
    let device: DeviceHandle

    init(context: DeviceContext, device: DeviceHandle) {
        self.context = context
        self.device = device
    }
}

/// A tensor copied out of a run into memory whose address C may hold until the next run.
final class COutput {
    let elementType: ElementType
    let data: UnsafeMutableRawBufferPointer
    let shape: UnsafeMutableBufferPointer<Int64>
    let byteCount: Int
    let rank: Int

    init(_ tensor: HostTensor) {
        elementType = tensor.elementType
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: max(tensor.bytes.count, 1), alignment: 16)
        tensor.bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { data.baseAddress!.copyMemory(from: base, byteCount: source.count) }
        }
        self.data = data
        shape = .allocate(capacity: max(tensor.shape.count, 1))
        _ = shape.initialize(from: tensor.shape.map(Int64.init))
        byteCount = tensor.bytes.count
        rank = tensor.shape.count
    }

    deinit {
        data.deallocate()
        shape.deallocate()
    }
}

/// `fm_session`: a runtime session, the inputs set so far and the latest run's outputs. Used from one
/// thread at a time (flashmem.h says so), hence no locking.
final class SessionHandle {
    let session: Session
    let bundle: BundleHandle
    let device: DeviceHandle
    /// The context it was made in (nil: a session with memory of its own); kept alive with the session.
    let context: ContextHandle?
    var inputs: [String: HostTensor] = [:]
    var outputs: [COutput] = []

    init(session: Session, bundle: BundleHandle, device: DeviceHandle, context: ContextHandle? = nil) {
        self.session = session
        self.bundle = bundle
        self.device = device
        self.context = context
    }
}

/// `fm_dtype` ↔ `ElementType`: the C enum uses the format's codes.
func elementType(_ dtype: Int32) -> ElementType? {
    guard let raw = UInt8(exactly: dtype) else { return nil }
    return ElementType(rawValue: raw)
}

func dtype(_ type: ElementType) -> Int32 { Int32(type.rawValue) }
