#!/usr/bin/env bash
# Makes a fresh machine ready for `npm test`: dependencies installed, RabbitMQ
# answering on 127.0.0.1:5672, python3-pika present for the QAM interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

broker_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if ! broker_answers; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  rabbitmq-server -detached || true
  for _ in $(seq 1 60); do
    broker_answers && break
    sleep 1
  done
  broker_answers || { echo "RabbitMQ does not answer on 127.0.0.1:5672" >&2; exit 1; }
  rabbitmqctl await_startup >/dev/null 2>&1 || true
fi

# The QAM interop tests run an independent Python peer on Debian's python3-pika.
if ! /usr/bin/python3 -c 'import pika' >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-pika >/dev/null
fi
