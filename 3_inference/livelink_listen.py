"""Listen for Live Link Face packets (what `inference.py --livelink` and the iPhone app send to
Unreal) and say what arrives: once a second the packet rate, the latency from each frame's time to
its arrival, and a few values. Useful to check a network before opening Unreal, and the other end
of the tests.

    python 3_inference/livelink_listen.py                      # all interfaces, port 11111, until Ctrl-C
    python 3_inference/livelink_listen.py --port 11112 --seconds 10 --json received.json

Latency is the arrival time minus the frame's time (a timecode: seconds since local midnight). Our
sender stamps each frame with the moment its audio arrived, so on one machine, or machines whose
clocks agree, it is the end-to-end latency from sound in to packet received. A datagram that is not
a Live Link Face packet is reported in one line and skipped.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: PORT as --port) ------------------------
HOST = "0.0.0.0"                # the address to listen on (0.0.0.0: every interface)
PORT = 11111                    # Live Link Face's default port
SECONDS = 0.0                   # stop after this long (0: at Ctrl-C)
COUNT = 0                       # stop after this many packets (0: no limit)
IDLE_SECONDS = 0.0              # once packets have come, stop after this long without one (0: never)
JSON = ""                       # write every packet received (values, times, latency) here at the end
QUIET = False                   # no line per second, only the summary
# --- end of settings ---------------------------------------------------------------------------

SHOWN = ("JawOpen", "MouthClose", "MouthFunnel", "MouthSmileLeft", "HeadYaw", "HeadPitch")


def main(argv=None) -> int:
    configure(globals(), argv)
    from voiceface.cli import out_of_range
    from voiceface.livelink import DEFAULT_PORT
    if problem := out_of_range(("--seconds", SECONDS, 0, False, "0: until Ctrl-C")) or (
            None if 1 <= PORT <= 65535 else f"--port {PORT}: give a port in 1-65535 (Live Link Face's is {DEFAULT_PORT})"):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import socket
    import time

    import numpy as np
    from voiceface.formats import write_json_atomic
    from voiceface.livelink import LIVE_LINK_NAMES, decode_packet, time_of_day

    try:
        listener = socket.socket(socket.AF_INET6 if ":" in HOST else socket.AF_INET, socket.SOCK_DGRAM)
        listener.bind((HOST, PORT))
    except OSError as error:
        print(f"error: cannot listen on {HOST}:{PORT} ({error.strerror or error}); is another program (Unreal, "
              "another listener) using the port? choose another with --port", file=sys.stderr)
        return 1
    listener.settimeout(0.2)
    print(f"listening for Live Link Face packets on {HOST}:{PORT}" + (f" for {SECONDS:g} s" if SECONDS else
                                                                    "; Ctrl-C stops"), flush=True)
    shown = [LIVE_LINK_NAMES.index(name) for name in SHOWN]
    received, bad = [], 0
    start = last_report = time.time()
    last_packet = None
    in_second = []
    try:
        while True:
            now = time.time()
            if (SECONDS and now - start >= SECONDS) or (COUNT and len(received) >= COUNT) or \
                    (IDLE_SECONDS and last_packet is not None and now - last_packet >= IDLE_SECONDS):
                break
            try:
                data, sender = listener.recvfrom(4096)
            except socket.timeout:
                data = None
            arrival = time.time()
            if data is not None:
                try:
                    packet = decode_packet(data)
                except ValueError as error:
                    bad += 1
                    print(f"skipped a datagram from {sender[0]}:{sender[1]}: {error}", flush=True)
                    continue
                latency = (time_of_day(arrival) - packet.seconds + 43200) % 86400 - 43200   # across midnight too
                record = {"subject": packet.subject, "device_id": packet.device_id, "frame_number": packet.frame_number,
                          "sub_frame": packet.sub_frame, "fps": packet.fps, "arrival_s": arrival,
                          "latency_ms": 1000 * latency, "values": packet.values.tolist()}
                received.append(record)
                in_second.append(record)
                last_packet = arrival
            if arrival - last_report >= 1.0:
                if in_second and not QUIET:
                    latest = in_second[-1]
                    latencies = [r["latency_ms"] for r in in_second]
                    print(f"{latest['subject']} @ {latest['fps']:g} fps: {len(in_second) / (arrival - last_report):5.1f} "
                          f"packets/s, latency {np.median(latencies):6.1f} ms (max {max(latencies):6.1f})  " +
                          "  ".join(f"{name} {latest['values'][k]:+.3f}" for name, k in zip(SHOWN, shown)), flush=True)
                in_second, last_report = [], arrival
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    if received:
        arrivals = np.array([r["arrival_s"] for r in received])
        latencies = np.array([r["latency_ms"] for r in received])
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
        print(f"received {len(received)} packets ({rate:.1f} per second); latency p50 {np.percentile(latencies, 50):.1f} ms, "
              f"p99 {np.percentile(latencies, 99):.1f} ms; {bad} datagrams skipped")
    else:
        print(f"received no Live Link Face packet on {HOST}:{PORT}; {bad} datagrams skipped")
    if JSON:
        write_json_atomic(Path(JSON), {"host": HOST, "port": PORT, "names": list(LIVE_LINK_NAMES),
                                       "packets": received, "skipped": bad}, indent=None)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
