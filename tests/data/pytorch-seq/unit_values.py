import torch, numpy as np
torch.set_default_dtype(torch.float64)
def pat(shape, mul, mod, sub, div):
    n = int(np.prod(shape)); i = np.arange(n)
    return (((i*mul) % mod - sub)/div).reshape(shape)
def fmt(a): return ", ".join("%.9g" % v for v in np.asarray(a).ravel())
S,B,I,H=3,2,3,2
X=pat((S,B,I),7,11,5,4); W=pat((1,4*H,I),5,7,3,8); R=pat((1,4*H,H),3,5,2,6); Bb=pat((1,8*H),1,3,1,4)
h0=pat((1,B,H),1,5,2,4); c0=pat((1,B,H),2,7,3,5)
# ONNX iofc -> torch ifgo
def iofc_to_ifgo(m):
    i,o,f,c=np.split(m,4,axis=0); return np.concatenate([i,f,c,o],0)
l=torch.nn.LSTM(I,H)
with torch.no_grad():
    l.weight_ih_l0.copy_(torch.tensor(iofc_to_ifgo(W[0]))); l.weight_hh_l0.copy_(torch.tensor(iofc_to_ifgo(R[0])))
    l.bias_ih_l0.copy_(torch.tensor(iofc_to_ifgo(Bb[0,:4*H]))); l.bias_hh_l0.copy_(torch.tensor(iofc_to_ifgo(Bb[0,4*H:])))
    y,(hn,cn)=l(torch.tensor(X),(torch.tensor(h0),torch.tensor(c0)))
print("LSTM Y", fmt(y)); print("LSTM Yh", fmt(hn)); print("LSTM Yc", fmt(cn))
# GRU lbr=1: ONNX zrh -> torch r z n
Wg=pat((1,3*H,I),5,7,3,8); Rg=pat((1,3*H,H),3,5,2,6); Bg=pat((1,6*H),1,3,1,4)
def zrh_to_rzn(m):
    z,r,h=np.split(m,3,axis=0); return np.concatenate([r,z,h],0)
g=torch.nn.GRU(I,H)
with torch.no_grad():
    g.weight_ih_l0.copy_(torch.tensor(zrh_to_rzn(Wg[0]))); g.weight_hh_l0.copy_(torch.tensor(zrh_to_rzn(Rg[0])))
    g.bias_ih_l0.copy_(torch.tensor(zrh_to_rzn(Bg[0,:3*H]))); g.bias_hh_l0.copy_(torch.tensor(zrh_to_rzn(Bg[0,3*H:])))
    y,hn=g(torch.tensor(X),torch.tensor(h0))
print("GRU Y", fmt(y)); print("GRU Yh", fmt(hn))
# RNN relu bidirectional
Wr=pat((2,H,I),5,7,1,8); Rr=pat((2,H,H),3,5,1,6); Br=pat((2,2*H),1,3,0,4)
r=torch.nn.RNN(I,H,nonlinearity='relu',bidirectional=True)
with torch.no_grad():
    r.weight_ih_l0.copy_(torch.tensor(Wr[0])); r.weight_hh_l0.copy_(torch.tensor(Rr[0]))
    r.bias_ih_l0.copy_(torch.tensor(Br[0,:H])); r.bias_hh_l0.copy_(torch.tensor(Br[0,H:]))
    r.weight_ih_l0_reverse.copy_(torch.tensor(Wr[1])); r.weight_hh_l0_reverse.copy_(torch.tensor(Rr[1]))
    r.bias_ih_l0_reverse.copy_(torch.tensor(Br[1,:H])); r.bias_hh_l0_reverse.copy_(torch.tensor(Br[1,H:]))
    y,hn=r(torch.tensor(X))
# torch Y [S,B,2H] -> ONNX [S,2,B,H]
y=y.numpy().reshape(S,B,2,H).transpose(0,2,1,3)
print("RNN Y", fmt(y)); print("RNN Yh", fmt(hn))
