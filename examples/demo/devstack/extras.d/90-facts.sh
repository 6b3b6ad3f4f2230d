# 90-facts.sh - the controller publishes its API address; the computes read it later.
if [[ "$1" == "stack" && "$2" == "install" && "$STACKBUS_HOST" == "controller" ]]; then
    CONTROLLER_API="http://$HOST_IP:5000/identity"
    stackbus_export CONTROLLER_API
    echo "90-facts: exported CONTROLLER_API=$CONTROLLER_API"
fi
if [[ "$1" == "stack" && "$2" == "post-config" && "$STACKBUS_HOST" != "controller" ]]; then
    echo "90-facts: the controller's API is $(stackbus_fact controller CONTROLLER_API)"
fi
