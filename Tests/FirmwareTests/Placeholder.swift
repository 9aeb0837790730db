// FirmwareTests: placeholder, replaced by the area's tests.
import Testing
