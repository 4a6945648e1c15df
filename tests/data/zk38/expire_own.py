import sys, time, struct; import os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); from rawzk import *
port=int(sys.argv[1]); r=Raw(port, 4000)
p='/h5own%d'%int(time.time()*1000)
print(r.call(1, create(p, b'', 1)))
print(r.call(3, s(p)+b'\1'))
t=time.time()
while True:
    f=r.read(15)
    print(round(time.time()-t,2), f if f in (None,'timeout') else (struct.unpack('>iqi',f[:16]), f[16:]))
    if f in (None,'timeout'): break
