# A client written against Python's standard library, run unpatched and under
# the shim by test_real_programs: sockets with timeouts, time.sleep, DNS for
# localhost, and an HTTP request to the server the test started.
import socket
import sys
import time
import urllib.request

port = int(sys.argv[1])
t0 = time.monotonic()
time.sleep(0.05)
print("slept >= 50ms:", time.monotonic() - t0 >= 0.05)
print("getaddrinfo:", sorted({a[4][0] for a in socket.getaddrinfo("localhost", port, socket.AF_INET)}))
print("gethostbyname:", socket.gethostbyname("localhost"))
a, b = socket.socketpair()
a.settimeout(0.1)
try:
    a.recv(10)
    print("recv: no timeout?!")
except socket.timeout:
    print("recv timed out")
b.sendall(b"hello")
print("recv:", a.recv(10))
s = socket.create_connection(("localhost", port), timeout=5)
s.sendall(b"GET /hello.txt HTTP/1.0\r\nHost: localhost\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print("raw status line:", data.split(b"\r\n", 1)[0].decode())
print("raw body:", data.split(b"\r\n\r\n", 1)[1].decode().strip())
with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=5) as r:
    print("urllib:", r.status, r.read().decode().strip())
closed = socket.socket()
closed.bind(("127.0.0.1", 0))
free_port = closed.getsockname()[1]
closed.close()
try:
    socket.create_connection(("127.0.0.1", free_port), timeout=2)
except OSError as e:
    print("connect refused errno:", e.errno)
