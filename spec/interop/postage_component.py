#!/usr/bin/env python3
"""A Postage component on pika, as Postage 3 builds one, for qam's interop tests:
`postage_component.py <exchange> <qam_key> <own_queue> <own_key>`.

Phase 1, a Postage producer talking to a qam QAMProcessor bound to <exchange> with <qam_key>:
- sends a fire-and-forget MessageCommand 'note', a MessageStatus 'online' and a body that is not
  JSON;
- sends RpcCommands 'square', 'explode' and 'nosuch' the Postage way (a server-named exclusive
  reply queue per call, no correlation id) and prints `RESULT <name> <result content as JSON>`
  for each.
Phase 2, a Postage MessageProcessor for a qam QAMProducer: declares <exchange> with Postage's
Exchange parameters, binds <own_queue> (auto-delete, as Postage declares queues) with <own_key>,
prints READY and consumes with prefetch 1:
- answers an RpcCommand with a MessageResult through Postage's rpc_reply (default exchange,
  routing key reply_to, no properties), whose value echoes what it read;
- on the MessageCommand 'quit', prints QUIT and exits.
"""
import json
import os
import socket
import sys

import pika

exchange, qam_key, own_queue, own_key = sys.argv[1:5]
params = pika.ConnectionParameters(host='127.0.0.1', port=5672, credentials=pika.PlainCredentials('guest', 'guest'))
connection = pika.BlockingConnection(params)
channel = connection.channel()
# Postage's Fingerprint.as_dict(): every value a string.
fingerprint = {'name': 'postage_component', 'type': 'python', 'pid': str(os.getpid()), 'host': socket.gethostname(),
               'user': 'test', 'vhost': '/'}
# Postage's Exchange defaults: durable, not auto-delete.
channel.exchange_declare(exchange=exchange, exchange_type='direct', passive=False, durable=True, auto_delete=False)


def message(type_, name, category, content):
    return {'type': type_, 'name': name, 'category': category, 'version': '2', 'fingerprint': fingerprint,
            'content': content, '_reserved': {}}


def send(body):
    channel.basic_publish(exchange=exchange, routing_key=qam_key, body=body,
                          properties=pika.BasicProperties(content_type='application/json'))


def rpc(name, parameters):
    reply_queue = channel.queue_declare(queue='', exclusive=True, auto_delete=True).method.queue
    channel.basic_publish(exchange=exchange, routing_key=qam_key, body=json.dumps(message('command', name, 'rpc', {'parameters': parameters})),
                          properties=pika.BasicProperties(content_type='application/json', reply_to=reply_queue))
    for method, _properties, body in channel.consume(reply_queue, inactivity_timeout=30):
        channel.cancel()
        if method is None:
            return {'type': 'exception', 'value': 'TimeoutError', 'message': 'no result'}
        channel.basic_ack(method.delivery_tag)
        return json.loads(body)['content']


send(json.dumps(message('command', 'note', 'message', {'parameters': {'text': 'hello from Postage'}})))
send(json.dumps(message('status', 'online', 'message', {})))
send('this is not JSON')
for name, parameters in [('square', {'n': 7}), ('explode', {}), ('nosuch', {})]:
    print('RESULT', name, json.dumps(rpc(name, parameters), sort_keys=True), flush=True)

channel.queue_declare(queue=own_queue, auto_delete=True)
channel.queue_bind(queue=own_queue, exchange=exchange, routing_key=own_key)
channel.basic_qos(prefetch_count=1)


def on_message(ch, method, properties, body):
    decoded = json.loads(body)
    headers = properties.headers or {}
    claimed = headers.get('x-qam-fingerprint')
    if isinstance(claimed, bytes):
        claimed = claimed.decode('utf-8')
    if decoded['category'] == 'rpc' and decoded['type'] == 'command':
        value = {
            'command': decoded['name'],
            'parameters': decoded['content'].get('parameters'),
            'version': decoded['version'],
            'sender': decoded['fingerprint'].get('name'),
            'header_sender': json.loads(claimed)['name'] if claimed else None,
        }
        result = message('result', 'none', 'message', {'type': 'success', 'value': value, 'message': 'echoed'})
        ch.basic_publish(exchange='', routing_key=properties.reply_to, body=json.dumps(result))
    ch.basic_ack(delivery_tag=method.delivery_tag)
    if decoded['category'] == 'message' and decoded['type'] == 'command' and decoded['name'] == 'quit':
        print('QUIT', flush=True)
        ch.stop_consuming()


channel.basic_consume(queue=own_queue, on_message_callback=on_message)
print('READY', flush=True)
channel.start_consuming()
connection.close()
