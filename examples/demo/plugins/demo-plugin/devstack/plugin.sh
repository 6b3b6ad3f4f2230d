# demo-plugin/devstack/plugin.sh - an external plugin's dispatch script.
if is_service_enabled demo; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing demo-plugin"
        mkdir -p "$DEMO_DIR"
        demo_installed_at=$(date +%s)
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring demo-plugin ($DEMO_GREETING), installed at $demo_installed_at"
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting demo-plugin"
        sleep 0.3
    fi
    if [[ "$1" == "unstack" ]]; then
        echo "demo-plugin: stopping"
    fi
    if [[ "$1" == "clean" ]]; then
        rm -rf "$DEMO_DIR"
    fi
fi
