/* Routing sweep behind results/intel-xeon-2c-2026-12-07-dispatch: every routing method on the
 * synthetic router of `moebench bench --method` (E=128 K=8, Llama4 K=1, DeepSeekV3 E=256 G=8 TG=4
 * rsf 2.5 with an f32 bias, MiniMax2 with an f32 bias; logits normal(0,1)), flashinfer and vllm,
 * f32 and bf16 logits, T in {1,2,4,8,16,64,256,4096}. Per case the variants run interleaved,
 * 9 rounds, and each reports its fastest round (ns per call): the reference (T <= 256),
 * moe_route__avx2, moe_route__avx512 as committed before this change (old512, its 16-token block
 * for any T) and now, and the avx512bf16 whole table (what dispatch runs). Build: see README.md. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "moe/moe.h"
moe_route_fn moe_route__avx2, moe_route__avx512, old_route__avx512;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static uint64_t rs=88172645463325252ull;
static double unif(void){rs^=rs<<13;rs^=rs>>7;rs^=rs<<17;return (rs>>11)*(1.0/9007199254740992.0);}
static double gauss(void){double u=unif()+1e-300,v=unif();return sqrt(-2*log(u))*cos(6.283185307179586*v);}
int main(void){
  static const int Ts[]={1,2,4,8,16,64,256,4096}; const int nT=8;
  const int64_t Tmax=4096; const int E=256;
  float *lg=malloc(sizeof(float)*Tmax*E); uint16_t *lb=malloc(2*Tmax*E); float bias[256];
  for(int64_t i=0;i<Tmax*E;i++){lg[i]=(float)gauss(); uint32_t u; memcpy(&u,&lg[i],4); lb[i]=(uint16_t)((u+0x7fff+((u>>16)&1))>>16);}
  for(int i=0;i<256;i++)bias[i]=(float)(gauss()*0.05);
  int32_t *ids=malloc(4*Tmax*16); float*w=malloc(4*Tmax*16);
  const struct moe_backend *disp=moe_backend_for_isa(MOE_ISA_AVX512_BF16);
  printf("%-16s %-10s %-4s %5s %10s %10s %10s %10s %10s  %s\n","method","profile","lg","T","ref","avx2","old512","avx512","dispatch","dispatch/best-variant");
  for(int prof=0;prof<2;prof++) for(int dt=0;dt<2;dt++) for(int m=0;m<10;m++){
    int E_=128,K=8;
    if(m==MOE_ROUTE_DEEPSEEKV3)E_=256;
    if(m==MOE_ROUTE_LLAMA4)K=1;
    struct moe_route_params p=moe_route_params_default((enum moe_routing_method)m,E_,K);
    p.profile=prof==0?MOE_PROFILE_FLASHINFER:MOE_PROFILE_VLLM;
    p.logits_dtype=dt?MOE_DTYPE_BF16:MOE_DTYPE_F32;
    if(m==MOE_ROUTE_DEEPSEEKV3){p.n_group=8;p.topk_group=4;p.routed_scaling_factor=2.5f;}
    const void*b=NULL; if(m==MOE_ROUTE_DEEPSEEKV3||m==MOE_ROUTE_MINIMAX2){p.bias_dtype=MOE_DTYPE_F32;b=bias;}
    if(moe_route_validate(&p)!=MOE_OK){printf("%s %s: %s\n",moe_routing_method_name(p.method),moe_profile_name(p.profile),moe_last_error());continue;}
    const void*L=dt?(const void*)lb:(const void*)lg;
    for(int ti=0;ti<nT;ti++){const int T=Ts[ti];
      double best[5]; for(int v=0;v<5;v++)best[v]=INFINITY;
      const int calls=T>=4096?1:T>=256?4:T>=16?30:150;
      for(int rep=0;rep<9;rep++) for(int v=0;v<5;v++){
        if(v==0&&T>256)continue;
        const double t0=now();
        for(int c=0;c<calls;c++){
          if(v==0)moe_route__ref(&p,T,L,b,ids,w); else if(v==1)moe_route__avx2(&p,T,L,b,ids,w);
          else if(v==2)old_route__avx512(&p,T,L,b,ids,w); else if(v==3)moe_route__avx512(&p,T,L,b,ids,w);
          else disp->route(&p,T,L,b,ids,w);}
        const double d=(now()-t0)/calls; if(d<best[v])best[v]=d;}
      double bv=fmin(best[1],best[3]); if(T<=256)bv=fmin(bv,best[0]);
      printf("%-16s %-10s %-4s %5d %10.0f %10.0f %10.0f %10.0f %10.0f  %.2f\n",moe_routing_method_name(p.method),moe_profile_name(p.profile),dt?"bf16":"f32",T,
        isinf(best[0])?0:best[0],best[1],best[2],best[3],best[4],best[4]/bv);
      fflush(stdout);
    }}
  return 0;}
