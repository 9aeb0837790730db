// QMP: placeholder until the QMP area lands; replaced by its owner.
