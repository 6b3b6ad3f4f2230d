# 10-hello.sh - says which phase this host is in, and keeps a variable across phases.
case "$1" in
    override_defaults)
        HELLO_PHASES=0
        ;;
    source)
        echo "hello from $STACKBUS_HOST: TOP_DIR=$TOP_DIR DEST=$DEST services=$ENABLED_SERVICES"
        ;;
esac
HELLO_PHASES=$((HELLO_PHASES + 1))
echo "10-hello: $* (phase number $HELLO_PHASES on this host)"
sleep 0.2
