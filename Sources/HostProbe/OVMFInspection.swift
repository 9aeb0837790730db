// The OVMF traits discovery needs, read through the Firmware module's OVMFImage.
import Firmware

/// Reads `path` as OVMF (throws FirmwareError when it is not one).
func inspectOVMF(path: String) throws -> OVMFTraits {
    let image = try OVMFImage(path: path)
    return OVMFTraits(
        size: image.size, singleFile: image.isSingleFile, hasSEVMetadata: image.hasSEVMetadata, hasHashesTable: image.hasHashesTable)
}
