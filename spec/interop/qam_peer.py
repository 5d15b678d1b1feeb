#!/usr/bin/python3
"""Independent Python peer speaking Python QAM's JSON wire format.

Written from the wire-format document only (section "QAM (JSON serializer)"),
not from the TypeScript library it is used to test.  Standard library + pika.

Modes (see spec/interop/README.md for the full protocol):

  server  --server-id S [--delete-on-exit] [--no-stdin-exit]
  proxy   --server-id S --client-id C [--verbose-replies] [--report-unmatched]
  cleanup --server-id S [--client-id C ...]

All modes take --url (default amqp://guest:guest@127.0.0.1:5672/%2F); only
loopback hosts are accepted.
"""

import argparse
import itertools
import json
import logging
import math
import os
import queue
import signal
import sys
import threading
import time
import urllib.parse

import pika
import pika.exceptions

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_TIMEOUT = 10.0
LOOP_TICK = 0.05

log = logging.getLogger("qam_peer")


# --------------------------------------------------------------------------
# Names, flags and properties (the protocol)
# --------------------------------------------------------------------------

def server_exchange(server_id):
    return "%s_server_exchange" % server_id


def server_queue(server_id):
    return "%s_server_queue" % server_id


def server_routing_key(server_id):
    return "%s_server_routing_key" % server_id


def client_exchange(server_id):
    return "%s_client_exchange" % server_id


def client_queue(client_id):
    return "%s_client_queue" % client_id


def client_routing_key(client_id):
    return "%s_client_routing_key" % client_id


def declare_exchange(channel, name):
    channel.exchange_declare(exchange=name, exchange_type="direct",
                             durable=True, auto_delete=False)


def declare_queue(channel, name):
    channel.queue_declare(queue=name, durable=True, exclusive=False,
                          auto_delete=False)


def message_properties():
    # No correlation_id / reply_to: everything is in the body.
    return pika.BasicProperties(delivery_mode=2,
                                content_type="application/json",
                                content_encoding="utf-8")


def _reject_constant(name):
    raise ValueError("non-standard JSON constant %s" % name)


def json_loads(text):
    """Strict JSON: NaN / Infinity are not JSON and are rejected."""
    return json.loads(text, parse_constant=_reject_constant)


def json_dumps(value):
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


def is_json_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def connect(url):
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("qam_peer: refusing non-loopback broker host %r" % host)
    return pika.BlockingConnection(pika.URLParameters(url))


def emit(obj):
    """Write one JSON line to stdout (main thread only)."""
    try:
        sys.stdout.write(json_dumps(obj) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def emit_ready():
    try:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


class StopFlag:
    def __init__(self):
        self.event = threading.Event()
        self.reason = None

    def set(self, reason):
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def __bool__(self):
        return self.event.is_set()


def install_signal_handlers(stop):
    def handler(signum, _frame):
        stop.set("signal %d" % signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def wake(connection):
    """Make a blocked process_data_events return; safe from any thread."""
    try:
        connection.add_callback_threadsafe(lambda: None)
    except Exception:  # connection already closed
        pass


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

def add(x, y):
    return x + y


def echo(value):
    return value


def raises():
    raise Exception("boom", 42)


def slow(seconds, value):
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) \
            or not math.isfinite(seconds) or seconds < 0:
        raise ValueError("seconds must be a non-negative number")
    time.sleep(seconds)
    return value


class TestClass:
    def adder_function(self, a, b):
        return a + b

    def concat(self, a, b):
        return a + b


FUNCTIONS = {"add": add, "echo": echo, "raises": raises, "slow": slow}
INSTANCES = {"my_instance": TestClass()}


def not_found_text(name):
    return "Methodname %s is not registered on QAMServer" % name


def resolve(method_name):
    """Return (callable, None) or (None, name_for_not_found_message)."""
    if "." not in method_name:
        fn = FUNCTIONS.get(method_name)
        if fn is None:
            return None, method_name
        return fn, None
    instance_name, rest = method_name.split(".", 1)
    # QAM would call a.b for "a.b.c"; a sound peer rejects deeper paths. The
    # not-found text names everything after the first dot ("b.c").
    if "." in rest:
        return None, rest
    instance = INSTANCES.get(instance_name)
    if instance is None or rest.startswith("_"):
        return None, rest
    fn = getattr(instance, rest, None)
    if fn is None or not callable(fn):
        return None, rest
    return fn, None


def exception_args(exc):
    args = list(exc.args)
    try:
        json_dumps(args)
        return args
    except (TypeError, ValueError):
        return [repr(a) for a in args]


def validate_request(body):
    """Return (request_dict, None, None) or (None, problem, (id, routing_key) | None)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "body is not UTF-8: %s" % exc, None
    try:
        req = json_loads(text)
    except ValueError as exc:
        return None, "body is not JSON: %s" % exc, None
    if not isinstance(req, dict):
        return None, "body is not a JSON object", None
    rid = req.get("id")
    rkey = req.get("routing_key")
    target = (rid, rkey) if is_json_int(rid) and isinstance(rkey, str) and rkey else None
    for field in ("id", "method_name", "routing_key", "params"):
        if field not in req:
            return None, "missing field %s" % field, target
    if not is_json_int(rid):
        return None, "field id must be an integer", target
    if not isinstance(req["method_name"], str):
        return None, "field method_name must be a string", target
    if not isinstance(rkey, str) or not rkey:
        return None, "field routing_key must be a non-empty string", target
    if not isinstance(req["params"], list):
        return None, "field params must be a list", target
    return req, None, None


class Server:
    def __init__(self, args):
        self.args = args
        self.sid = args.server_id
        self.stop = StopFlag()
        self.connection = None
        self.channel = None
        self.workers = set()
        self.workers_lock = threading.Lock()

    # -- publishing (connection thread only) --
    def _publish_reply(self, routing_key, reply):
        try:
            body = json_dumps(reply).encode("utf-8")
        except (TypeError, ValueError) as exc:
            reply = {"id": reply["id"],
                     "result": ["result is not JSON-serialisable: %s" % exc],
                     "exception": True, "internal_exception": -1}
            body = json_dumps(reply).encode("utf-8")
        if self.channel is None or not self.channel.is_open:
            log.error("channel closed, dropping reply %s", body)
            return
        self.channel.basic_publish(exchange=client_exchange(self.sid),
                                   routing_key=routing_key, body=body,
                                   properties=message_properties())
        log.debug("replied %s -> %s", routing_key, body)

    def _reply_from_thread(self, routing_key, reply):
        try:
            self.connection.add_callback_threadsafe(
                lambda: self._publish_reply(routing_key, reply))
        except Exception as exc:
            log.error("cannot schedule reply %r: %s", reply, exc)

    # -- request handling --
    def _run(self, req):
        rid, rkey, name = req["id"], req["routing_key"], req["method_name"]
        try:
            fn, missing = resolve(name)
            if fn is None:
                reply = {"id": rid, "result": not_found_text(missing),
                         "exception": True, "internal_exception": 1}
            else:
                try:
                    result = fn(*req["params"])
                    reply = {"id": rid, "result": result,
                             "exception": False, "internal_exception": -1}
                except Exception as exc:  # the function raised
                    reply = {"id": rid, "result": exception_args(exc),
                             "exception": True, "internal_exception": -1}
            self._reply_from_thread(rkey, reply)
        finally:
            with self.workers_lock:
                self.workers.discard(threading.current_thread())

    def on_request(self, channel, method, _properties, body):
        # QAM acknowledges on receipt, before running the request.
        channel.basic_ack(delivery_tag=method.delivery_tag)
        req, problem, target = validate_request(body)
        if req is None:
            log.warning("malformed request skipped (%s): %r", problem, body[:500])
            if target is not None:
                rid, rkey = target
                self._publish_reply(rkey, {
                    "id": rid, "result": ["malformed request: %s" % problem],
                    "exception": True, "internal_exception": -1})
            return
        log.debug("request %r", req)
        t = threading.Thread(target=self._run, args=(req,), daemon=True)
        with self.workers_lock:
            self.workers.add(t)
        t.start()

    def _stdin_watcher(self):
        # os.read on the fd: a daemon thread blocked inside sys.stdin's
        # BufferedReader would hold its lock and abort interpreter shutdown.
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        self.stop.set("stdin closed")
        wake(self.connection)

    def run(self):
        install_signal_handlers(self.stop)
        self.connection = connect(self.args.url)
        self.channel = self.connection.channel()
        declare_exchange(self.channel, server_exchange(self.sid))
        declare_queue(self.channel, server_queue(self.sid))
        self.channel.queue_bind(queue=server_queue(self.sid),
                                exchange=server_exchange(self.sid),
                                routing_key=server_routing_key(self.sid))
        # Declared before any reply is published.
        declare_exchange(self.channel, client_exchange(self.sid))
        tag = self.channel.basic_consume(queue=server_queue(self.sid),
                                         on_message_callback=self.on_request,
                                         auto_ack=False)
        emit_ready()
        log.info("server %s serving", self.sid)
        if not self.args.no_stdin_exit:
            threading.Thread(target=self._stdin_watcher, daemon=True).start()
        exit_code = 0
        try:
            while not self.stop:
                self.connection.process_data_events(time_limit=LOOP_TICK)
            log.info("stopping: %s", self.stop.reason)
            self.channel.basic_cancel(tag)
            # Give in-flight requests a short grace period to send replies.
            deadline = time.monotonic() + self.args.grace
            while time.monotonic() < deadline:
                with self.workers_lock:
                    busy = bool(self.workers)
                self.connection.process_data_events(time_limit=LOOP_TICK)
                if not busy:
                    break
            if self.args.delete_on_exit:
                self.channel.queue_delete(queue=server_queue(self.sid))
                log.info("deleted queue %s", server_queue(self.sid))
        except pika.exceptions.AMQPError as exc:
            log.error("AMQP error: %r", exc)
            exit_code = 2
        finally:
            try:
                if self.connection.is_open:
                    self.connection.close()
            except Exception:
                pass
        return exit_code


# --------------------------------------------------------------------------
# Proxy
# --------------------------------------------------------------------------

class Proxy:
    def __init__(self, args):
        self.args = args
        self.sid = args.server_id
        self.cid = args.client_id
        self.stop = StopFlag()           # signals: stop now
        self.stdin_done = False
        self.lines = queue.Queue()
        # Ids only ever increase, also across proxy processes reusing the same
        # client id (a late reply may sit in the shared queue name): start at
        # microseconds since the epoch (~1.7e15 < 2**53, JS-safe) by default.
        first = args.first_id if args.first_id is not None else time.time_ns() // 1000
        self.ids = itertools.count(first)
        self.pending = {}                # id -> (seq, deadline)
        self.connection = None
        self.channel = None

    def _stdin_reader(self):
        # Raw fd reads (see Server._stdin_watcher); split into lines here.
        buf = b""
        try:
            while True:
                chunk = os.read(0, 65536)
                if not chunk:
                    break
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for raw_line in complete:
                    self.lines.put(raw_line.decode("utf-8", "replace"))
                if complete:
                    wake(self.connection)
        except OSError as exc:
            log.error("stdin error: %s", exc)
        if buf.strip():
            self.lines.put(buf.decode("utf-8", "replace"))
        self.lines.put(None)
        wake(self.connection)

    def _publish(self, body_bytes):
        # The request exchange is declared (once, at start) before publishing.
        self.channel.basic_publish(exchange=server_exchange(self.sid),
                                   routing_key=server_routing_key(self.sid),
                                   body=body_bytes,
                                   properties=message_properties())

    def _handle_line(self, line):
        line = line.strip()
        if not line:
            return
        try:
            cmd = json_loads(line)
        except ValueError as exc:
            log.error("bad input line %r: %s", line, exc)
            emit({"seq": None, "error": "input is not JSON: %s" % exc})
            return
        if not isinstance(cmd, dict):
            emit({"seq": None, "error": "input is not a JSON object"})
            return
        seq = cmd.get("seq")
        if "raw" in cmd:
            raw = cmd["raw"]
            if not isinstance(raw, str):
                emit({"seq": seq, "error": "raw must be a string"})
                return
            self._publish(raw.encode("utf-8"))
            emit({"seq": seq, "sent": True})
            return
        method = cmd.get("method")
        params = cmd.get("params", [])
        timeout = cmd.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(method, str):
            emit({"seq": seq, "error": "method must be a string"})
            return
        if not isinstance(params, list):
            emit({"seq": seq, "error": "params must be a list"})
            return
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) \
                or not math.isfinite(timeout) or timeout <= 0:
            emit({"seq": seq, "error": "timeout must be a positive number"})
            return
        rid = next(self.ids)
        body = {"id": rid, "method_name": method,
                "routing_key": client_routing_key(self.cid), "params": params}
        self.pending[rid] = (seq, time.monotonic() + timeout)
        self._publish(json_dumps(body).encode("utf-8"))
        log.debug("sent %r", body)

    def _props_summary(self, p):
        return {"delivery_mode": p.delivery_mode, "content_type": p.content_type,
                "content_encoding": p.content_encoding,
                "correlation_id": p.correlation_id, "reply_to": p.reply_to}

    def on_reply(self, channel, method, properties, body):
        channel.basic_ack(delivery_tag=method.delivery_tag)
        try:
            reply = json_loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            log.error("dropping unparsable reply (%s): %r", exc, body[:500])
            if self.args.report_unmatched:
                emit({"unmatched": True, "raw": body.decode("utf-8", "replace")})
            return
        rid = reply.get("id") if isinstance(reply, dict) else None
        if not is_json_int(rid) or rid not in self.pending:
            log.warning("dropping reply with unknown id: %r", body[:500])
            if self.args.report_unmatched:
                emit({"unmatched": True, "reply": reply,
                      "properties": self._props_summary(properties)})
            return
        seq, _deadline = self.pending.pop(rid)
        problems = []
        if properties.content_type != "application/json":
            problems.append("content_type %r" % properties.content_type)
        if properties.content_encoding != "utf-8":
            problems.append("content_encoding %r" % properties.content_encoding)
        if properties.delivery_mode != 2:
            problems.append("delivery_mode %r" % properties.delivery_mode)
        for p in problems:
            log.warning("reply %d: unexpected %s", rid, p)
        exc_flag = reply.get("exception")
        internal = reply.get("internal_exception")
        if "result" not in reply or not isinstance(exc_flag, bool) \
                or not is_json_int(internal):
            log.error("malformed reply for id %d: %r", rid, body[:500])
            out = {"seq": seq, "ok": False,
                   "malformed_reply": "reply needs result, boolean exception and "
                                      "integer internal_exception", "reply": reply}
        elif not exc_flag:
            out = {"seq": seq, "ok": True, "result": reply["result"]}
        else:
            # 1 = method not found; anything else (QAM: -1) = remote exception.
            out = {"seq": seq, "ok": False, "internal_exception": internal,
                   "result": reply["result"]}
        if self.args.verbose_replies:
            out["reply"] = reply
            out["properties"] = self._props_summary(properties)
            if problems:
                out["problems"] = problems
        emit(out)

    def _expire(self):
        now = time.monotonic()
        for rid, (seq, deadline) in list(self.pending.items()):
            if deadline <= now:
                del self.pending[rid]
                log.info("call id %d (seq %r) timed out", rid, seq)
                emit({"seq": seq, "timeout": True})

    def run(self):
        install_signal_handlers(self.stop)
        self.connection = connect(self.args.url)
        self.channel = self.connection.channel()
        declare_exchange(self.channel, server_exchange(self.sid))
        declare_exchange(self.channel, client_exchange(self.sid))
        declare_queue(self.channel, client_queue(self.cid))
        self.channel.queue_bind(queue=client_queue(self.cid),
                                exchange=client_exchange(self.sid),
                                routing_key=client_routing_key(self.cid))
        tag = self.channel.basic_consume(queue=client_queue(self.cid),
                                         on_message_callback=self.on_reply,
                                         auto_ack=False)
        emit_ready()
        threading.Thread(target=self._stdin_reader, daemon=True).start()
        exit_code = 0
        try:
            while not self.stop:
                self.connection.process_data_events(time_limit=LOOP_TICK)
                while True:
                    try:
                        line = self.lines.get_nowait()
                    except queue.Empty:
                        break
                    if line is None:
                        self.stdin_done = True
                    else:
                        self._handle_line(line)
                self._expire()
                if self.stdin_done and not self.pending:
                    break
            if self.stop:
                log.info("stopping: %s", self.stop.reason)
            self.channel.basic_cancel(tag)
            self.channel.queue_delete(queue=client_queue(self.cid))
            log.info("deleted queue %s", client_queue(self.cid))
        except pika.exceptions.AMQPError as exc:
            log.error("AMQP error: %r", exc)
            exit_code = 2
        finally:
            try:
                if self.connection.is_open:
                    self.connection.close()
            except Exception:
                pass
        return exit_code


# --------------------------------------------------------------------------
# Cleanup helper
# --------------------------------------------------------------------------

def run_cleanup(args):
    connection = connect(args.url)
    names = [("queue", server_queue(args.server_id)),
             ("exchange", server_exchange(args.server_id)),
             ("exchange", client_exchange(args.server_id))]
    for cid in args.client_id or []:
        names.append(("queue", client_queue(cid)))
    for kind, name in names:
        try:
            ch = connection.channel()
            if kind == "queue":
                ch.queue_delete(queue=name)
            else:
                ch.exchange_delete(exchange=name)
            ch.close()
            log.info("deleted %s %s", kind, name)
        except pika.exceptions.AMQPError as exc:
            log.warning("could not delete %s %s: %r", kind, name, exc)
    connection.close()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging on stderr")
    sub = parser.add_subparsers(dest="mode", required=True)

    s = sub.add_parser("server")
    s.add_argument("--server-id", required=True)
    s.add_argument("--delete-on-exit", action="store_true",
                   help="delete S_server_queue on exit")
    s.add_argument("--no-stdin-exit", action="store_true",
                   help="do not exit when stdin closes")
    s.add_argument("--grace", type=float, default=2.0,
                   help="seconds to wait for in-flight replies on exit")

    p = sub.add_parser("proxy")
    p.add_argument("--server-id", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--verbose-replies", action="store_true",
                   help="add raw reply body and properties to each result line")
    p.add_argument("--first-id", type=int, default=None,
                   help="first request id (default: microseconds since the epoch)")
    p.add_argument("--report-unmatched", action="store_true",
                   help="print replies with unknown ids as {\"unmatched\": true, ...}")

    c = sub.add_parser("cleanup")
    c.add_argument("--server-id", required=True)
    c.add_argument("--client-id", action="append")

    # Allow global options after the mode too (e.g. "server --url ... -v").
    for sp in (s, p, c):
        sp.add_argument("--url", default=argparse.SUPPRESS)
        sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)

    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr,
                        level=logging.DEBUG if args.verbose else logging.INFO,
                        format="qam_peer[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)

    if args.mode == "server":
        return Server(args).run()
    if args.mode == "proxy":
        return Proxy(args).run()
    return run_cleanup(args)


if __name__ == "__main__":
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # Skip interpreter finalisation: daemon threads (stdin reader, slow
        # request workers) must not delay or disturb the exit.
        os._exit(code or 0)
