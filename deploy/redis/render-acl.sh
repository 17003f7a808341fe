#!/bin/sh
# Renders users.acl.in (beside this script, or $1) into a Redis ACL file on stdout:
#
#   KYC_REDIS_WORKER_PASSWORD=… KYC_REDIS_APP_PASSWORD=… KYC_REDIS_SUBSCRIBER_PASSWORD=… \
#   KYC_REDIS_OPERATOR_PASSWORD=… sh deploy/redis/render-acl.sh > users.acl
#   redis-server --aclfile users.acl
#
# Every password is required, at least 16 characters (Redis answers ~100k AUTHs a second
# per core: use long random ones, e.g. `openssl rand -base64 32`). Only their SHA-256
# reaches the output. KYC_EVENTS_CHANNEL / KYC_EVENTS_STREAM name the events if not the
# default. POSIX sh with sed and sha256sum: runs inside the redis:7 image.
set -eu

here=$(dirname "$0")
template=${1:-$here/users.acl.in}
[ -r "$template" ] || { echo "render-acl: cannot read $template" >&2; exit 2; }

hash_of() {
    # $1: the variable's name. Prints the SHA-256 (hex) of its value; never the value.
    eval "value=\${$1:-}"
    if [ -z "$value" ]; then
        echo "render-acl: set $1" >&2
        exit 2
    fi
    if [ "${#value}" -lt 16 ]; then
        echo "render-acl: $1 must be at least 16 characters" >&2
        exit 2
    fi
    printf '%s' "$value" | sha256sum | cut -d' ' -f1
}

name_of() {
    # $1: a stream or channel name; refused unless a plain token (no glob, space or quote).
    case "$1" in
        '' | *[!A-Za-z0-9._:-]*)
            echo "render-acl: event stream/channel names must be plain tokens (A-Z a-z 0-9 . _ : -)" >&2
            exit 2 ;;
    esac
    printf '%s' "$1"
}

worker=$(hash_of KYC_REDIS_WORKER_PASSWORD)
app=$(hash_of KYC_REDIS_APP_PASSWORD)
subscriber=$(hash_of KYC_REDIS_SUBSCRIBER_PASSWORD)
operator=$(hash_of KYC_REDIS_OPERATOR_PASSWORD)
channel=$(name_of "${KYC_EVENTS_CHANNEL:-kyc.verification.events}")
stream=$(name_of "${KYC_EVENTS_STREAM:-$channel.stream}")

# Join continued lines, drop comments and blank lines, squeeze spaces, fill in.
sed -e ':join' -e '/\\$/{N;s/\\\n//;b join' -e '}' "$template" \
    | sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e 's/[[:space:]][[:space:]]*/ /g' \
    | sed -e "s/@WORKER_HASH@/$worker/" -e "s/@APP_HASH@/$app/" \
          -e "s/@SUBSCRIBER_HASH@/$subscriber/" -e "s/@OPERATOR_HASH@/$operator/" \
          -e "s/@EVENTS_STREAM@/$stream/g" -e "s/@EVENTS_CHANNEL@/$channel/g"
