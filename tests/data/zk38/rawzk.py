import socket, struct, time, sys
def s(x): b=x.encode() if isinstance(x,str) else x; return struct.pack('>i',len(b))+b
def frame(b): return struct.pack('>i',len(b))+b
class Raw:
    def __init__(self, port, timeout=4000):
        self.sock=socket.create_connection(('127.0.0.1',port)); self.buf=b''
        self.sock.sendall(frame(struct.pack('>iqiq',0,0,timeout,0)+s(b'\0'*16)+b'\0'))
        r=self.read()
        self.timeout,self.sid=struct.unpack('>iiq',r[:16])[1:]
        self.xid=0
    def read(self, t=10):
        self.sock.settimeout(t)
        while True:
            if len(self.buf)>=4:
                n=struct.unpack('>i',self.buf[:4])[0]
                if len(self.buf)>=4+n:
                    f=self.buf[4:4+n]; self.buf=self.buf[4+n:]; return f
            try: d=self.sock.recv(65536)
            except socket.timeout: return 'timeout'
            if not d: return None
            self.buf+=d
    def send(self, op, body, xid=None):
        if xid is None: self.xid+=1; xid=self.xid
        self.sock.sendall(frame(struct.pack('>ii',xid,op)+body))
        return xid
    def call(self, op, body):
        self.send(op, body)
        while True:
            r=self.read()
            if r is None or r=='timeout': return r
            xid,zxid,err=struct.unpack('>iqi',r[:16])
            if xid==-1: print('notif',r[16:]); continue
            return err, r[16:]
OPEN_ACL=struct.pack('>i',1)+struct.pack('>i',31)+s('world')+s('anyone')
def create(path, data=b'', flags=0): return s(path)+s(data)+OPEN_ACL+struct.pack('>i',flags)
