#!/usr/bin/env python3
"""An agentmesh agent in Python, joining the mesh through an MQTT broker and the peer's bridge.

It advertises one agent, "stats" (mean, median, standard deviation of a list of numbers), keeps a
retained "online" status with "offline" as its last will, answers the requests the bridge routes
to it, and answers a redelivered request (same attempt id) from its cache. Runs with Debian's
python3-paho-mqtt 1.6 and with paho-mqtt 2.x.

    AGENTMESH_MQTT_PASSWORD=... python3 agent.py --broker 127.0.0.1:1883 --client edge-7

Options: --network (default local), --agent (default stats), --instance ID (several instances of
one client share the work through a $share subscription), --key FILE (sign every reply with this
agent's own Ed25519 key, created on first use; needs python3-cryptography), --fail (answer every
call with an error: for trying reroutes), --delay-ms N (answer N ms late), --ca FILE (TLS, trusting
the broker certificate's CA).
"""
import argparse
import base64
import json
import os
import signal
import socket
import statistics
import sys
import threading
from collections import OrderedDict

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ADVERT = {
    "description": "Descriptive statistics of a list of numbers: mean, median and standard deviation",
    "skills": ["statistics", "mean", "median", "stdev", "math"],
    "inputSchema": {
        "type": "object",
        "properties": {"numbers": {"type": "array", "items": {"type": "number"}, "maxItems": 100000}},
        "required": ["numbers"],
    },
    "outputSchema": {
        "type": "object",
        "properties": {"mean": {"type": "number"}, "median": {"type": "number"}, "stdev": {"type": "number"}, "count": {"type": "integer"}},
    },
    "costPerCall": 0.1,
    "latencyMs": 20,
    "capacity": 4,
    "policy": ["deterministic", "no-network"],
}


def compute(request_input):
    """The agent's work. Raises ValueError for input it cannot handle (reported as kind "input")."""
    if not isinstance(request_input, dict) or not isinstance(request_input.get("numbers"), list):
        raise ValueError('send {"numbers": [1, 2, 3]}')
    numbers = request_input["numbers"]
    if not numbers or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in numbers):
        raise ValueError('"numbers" must be a non-empty list of numbers')
    return {
        "mean": statistics.fmean(numbers),
        "median": statistics.median(numbers),
        "stdev": statistics.stdev(numbers) if len(numbers) > 1 else 0.0,
        "count": len(numbers),
    }


def load_key(path):
    """The agent's Ed25519 key: a raw 32-byte seed in `path`, made (mode 0600) when missing."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    if not os.path.exists(path):
        seed = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(seed)
    with open(path, "rb") as f:
        key = Ed25519PrivateKey.from_private_bytes(f.read())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, base64.b64encode(raw).decode()


def endorsement_message(sign, reply_bytes):
    """What the agent's signature covers (protocols/consensus/endorsement.ts in agentmesh)."""
    head = f"agentmesh/v1 endorsed reply\n{sign['subtask']}\n{sign['inputHash']}\n{sign['agent']}\n"
    return head.encode() + reply_bytes


def make_client(client_id):
    """paho 2.x wants the callback API version first; 1.6 has no such argument."""
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="127.0.0.1:1883", help="host:port of the MQTT broker")
    parser.add_argument("--network", default="local")
    parser.add_argument("--client", required=True, help="your MQTT username: your agents live under agents/<client>/")
    parser.add_argument("--agent", default="stats")
    parser.add_argument("--instance", default=None)
    parser.add_argument("--key", default=None)
    parser.add_argument("--ca", default=None, help="PEM file of the broker's CA: connect over TLS")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()

    host, _, port = args.broker.rpartition(":")
    base = f"agentmesh/v1/{args.network}/agents/{args.client}"
    status_topic = f"{base}/status" + (f"/{args.instance}" if args.instance else "")
    advert_topic = f"{base}/{args.agent}/advert"
    request_topic = f"{base}/{args.agent}/request"
    if args.instance:
        # Every instance of this agent takes a share of the requests, none gets each twice.
        request_topic = f"$share/{args.client}-{args.agent}/{request_topic}"

    client = make_client(f"{args.client}-{args.agent}-{args.instance or 'main'}-{os.getpid()}")
    client.username_pw_set(args.client, os.environ.get("AGENTMESH_MQTT_PASSWORD"))
    if args.ca:
        client.tls_set(ca_certs=args.ca)
    client.will_set(status_topic, "offline", qos=1, retain=True)
    answered = OrderedDict()  # attempt id -> reply: a redelivered request gets the same answer
    advert = dict(ADVERT)
    key = None
    if args.key:
        key, advert["publicKey"] = load_key(args.key)

    def on_connect(c, userdata, flags, reason_code, properties=None):
        if getattr(reason_code, "is_failure", reason_code != 0):
            print(f"broker refused the connection: {reason_code}", file=sys.stderr, flush=True)
            os._exit(2)
        # paho leaves Nagle's algorithm on: small replies would wait ~40 ms for it.
        c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.subscribe(request_topic, qos=1)
        c.subscribe(f"agentmesh/v1/{args.network}/clients/{args.client}/errors", qos=1)
        c.publish(status_topic, "online", qos=1, retain=True)
        c.publish(advert_topic, json.dumps(advert), qos=1, retain=True)
        print(f"online as {args.client}/{args.agent}", flush=True)

    def on_message(c, userdata, msg):
        # paho 1.6 re-raises a callback's exception and its loop ends: nothing a request holds may do that.
        try:
            handle(c, msg)
        except Exception as err:
            print(f"could not handle a message on {msg.topic}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)

    def handle(c, msg):
        if msg.topic.endswith("/errors"):
            print(f"bridge says: {msg.payload.decode(errors='replace')}", file=sys.stderr, flush=True)
            return
        props = msg.properties
        response_topic = getattr(props, "ResponseTopic", None)
        if not response_topic:
            return
        try:
            request = json.loads(msg.payload)
            attempt = request["attempt"]
        except (ValueError, KeyError, TypeError):
            return
        print(f"request {attempt}", flush=True)
        reply = answered.get(attempt)
        if reply is None:
            if args.fail:
                reply = {"error": "this instance was started with --fail", "kind": "failed"}
            else:
                try:
                    reply = {"output": compute(request.get("input")), "confidence": 1.0}
                    json.dumps(reply, allow_nan=False)  # inf or NaN is not JSON: say so instead
                except ValueError as err:
                    reply = {"error": str(err), "kind": "input"}
                except Exception as err:  # anything else (an overflow): a failed call, never a dead agent
                    reply = {"error": f"{type(err).__name__}: {err}", "kind": "failed"}
            answered[attempt] = reply
            while len(answered) > 1024:
                answered.popitem(last=False)
        body = json.dumps(reply).encode()
        out = Properties(PacketTypes.PUBLISH)
        out.CorrelationData = getattr(props, "CorrelationData", attempt.encode())
        sign = request.get("sign")
        if key is not None and isinstance(sign, dict):
            # Sign only for this very agent (the bridge cannot borrow the signature for another).
            if not str(sign.get("agent", "")).endswith(f"/mqtt.{args.client}.{args.agent}"):
                print(f"refusing to sign for {sign.get('agent')!r}", file=sys.stderr, flush=True)
                return
            out.UserProperty = ("signature", base64.b64encode(key.sign(endorsement_message(sign, body))).decode())
        send = lambda: c.publish(response_topic, body, qos=1, properties=out)
        if args.delay_ms:
            # Late on purpose, without blocking the network loop (keep-alives go on).
            threading.Timer(args.delay_ms / 1000, send).start()
        else:
            send()

    client.on_connect = on_connect
    client.on_message = on_message

    def stop(*_):
        # A clean stop says "offline" itself (the will is only for crashes) and keeps the advert.
        client.publish(status_topic, "offline", qos=1, retain=True).wait_for_publish(5)
        client.disconnect()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    client.connect(host or "127.0.0.1", int(port or 1883), keepalive=5)
    client.loop_forever()


if __name__ == "__main__":
    main()
