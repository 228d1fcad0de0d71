"""Drives the official OpenAI and Anthropic Python SDKs through a Keystile route.

Usage: sdk_check.py <gateway-url> <keystile-key>
Prints one JSON object with what each SDK call returned.
"""
import json
import sys

import anthropic
import openai

gateway, key = sys.argv[1], sys.argv[2]
messages = [{"role": "user", "content": "hi"}]
out = {}

oa = openai.OpenAI(base_url=f"{gateway}/r/openai/v1", api_key=key, max_retries=0, timeout=10)
reply = oa.chat.completions.create(model="fake", messages=messages)
out["openai"] = reply.choices[0].message.content
stream = oa.chat.completions.create(model="fake", messages=messages, stream=True)
out["openai_stream"] = "".join(chunk.choices[0].delta.content or "" for chunk in stream)

an = anthropic.Anthropic(base_url=f"{gateway}/r/anthropic", api_key=key, max_retries=0, timeout=10)
msg = an.messages.create(model="fake", max_tokens=16, messages=messages)
out["anthropic"] = msg.content[0].text
with an.messages.stream(model="fake", max_tokens=16, messages=messages) as s:
    out["anthropic_stream"] = "".join(s.text_stream)

print(json.dumps(out))
