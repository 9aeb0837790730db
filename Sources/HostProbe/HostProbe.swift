// HostProbe: placeholder until the HostProbe area lands; replaced by its owner.
