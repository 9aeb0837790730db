# Stand-in for edk2 edksetup.sh (sevvm sets its variables itself and never sources it).
export WORKSPACE="$(pwd)"
