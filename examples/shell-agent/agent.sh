#!/bin/sh
# An agentmesh agent in plain shell, with Debian's mosquitto-clients (mosquitto_sub, mosquitto_pub):
# it answers with this machine's load average. A device that can run a shell can join the mesh.
#
#   AGENTMESH_MQTT_PASSWORD=... ./agent.sh [host] [port] [client] [network]
#
# Each request arrives as one line: the response topic, then the JSON request
# {"attempt":"…","input":…,"deadlineMs":…}. The reply names the attempt in its payload, which
# the bridge accepts in place of MQTT 5 correlation data. Note: -P puts the password in the
# process list; on a shared machine use a per-device password or client certificates.
set -eu
HOST=${1:-127.0.0.1}
PORT=${2:-1883}
CLIENT=${3:-edge-sh}
NET=${4:-local}
BASE="agentmesh/v1/$NET/agents/$CLIENT"
set -- -V mqttv5 -h "$HOST" -p "$PORT" -u "$CLIENT"
[ -n "${AGENTMESH_MQTT_PASSWORD:-}" ] && set -- "$@" -P "$AGENTMESH_MQTT_PASSWORD"

# The advert first (retained), then a retained marker on our own topic: the broker hands it to the
# subscription below as soon as that is active, and only then do we say "online" (a request sent
# before the subscription existed would be lost).
mosquitto_pub "$@" -q 1 -r -t "$BASE/load/advert" -m '{
  "description": "Load average of this machine over the last 1, 5 and 15 minutes",
  "skills": ["system-load", "uptime", "monitoring"],
  "outputSchema": { "type": "object", "properties": { "load1": { "type": "number" } } },
  "latencyMs": 50, "capacity": 1, "policy": ["read-only", "no-network"] }'
mosquitto_pub "$@" -q 1 -r -t "$BASE/load/ready" -m "$$"

# The subscription's connection carries the last will: if this script dies, the broker says
# "offline" for it and the bridge withdraws the agent from the mesh.
mosquitto_sub "$@" -q 1 -t "$BASE/load/request" -t "$BASE/load/ready" -F '%t|%R|%p' \
  --will-topic "$BASE/status" --will-payload offline --will-retain --will-qos 1 |
  while IFS='|' read -r topic reply_topic request; do
    if [ "$topic" = "$BASE/load/ready" ]; then
      mosquitto_pub "$@" -q 1 -r -t "$BASE/status" -m online
      echo "online as $CLIENT/load"
      continue
    fi
    [ -n "$reply_topic" ] || continue
    attempt=$(printf '%s' "$request" | sed -n 's/.*"attempt":"\([A-Za-z0-9._-]*\)".*/\1/p')
    read -r one five fifteen _ < /proc/loadavg
    mosquitto_pub "$@" -q 1 -t "$reply_topic" \
      -m "{\"attempt\":\"$attempt\",\"output\":{\"load1\":$one,\"load5\":$five,\"load15\":$fifteen},\"confidence\":1}"
    echo "answered $attempt"
  done
