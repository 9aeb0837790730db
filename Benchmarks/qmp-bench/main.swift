// qmp-bench: placeholder until the QMP benchmark lands.
print("qmp-bench: not built yet")
